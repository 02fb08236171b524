//! `--repository R ACTION... [--repository R2 ACTION...]`: a repeatable
//! flag whose occurrences each take a repository and its actions. clap's
//! derive cannot keep occurrences apart (`Vec<Vec<_>>` is unstable), so
//! these flags implement [`clap::Args`] by hand.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

macro_rules! repo_action_flag {
    ($(#[$doc:meta])* $name:ident, $id:literal, $help:literal, $required:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name(pub Vec<Vec<String>>);

        impl FromArgMatches for $name {
            fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
                Ok($name(groups(m, $id)))
            }
            fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
                self.0 = groups(m, $id);
                Ok(())
            }
        }

        impl Args for $name {
            fn augment_args(cmd: Command) -> Command {
                cmd.arg(flag($id, $help, $required))
            }
            fn augment_args_for_update(cmd: Command) -> Command {
                cmd.arg(flag($id, $help, $required))
            }
        }
    };
}

fn flag(id: &'static str, help: &'static str, required: bool) -> Arg {
    Arg::new(id)
        .long(id)
        .num_args(2..)
        .action(ArgAction::Append)
        .value_parser(clap::value_parser!(String))
        .value_names(["REPOSITORY", "ACTION"])
        .required(required)
        .help(help)
}

fn groups(m: &ArgMatches, id: &str) -> Vec<Vec<String>> {
    m.get_occurrences::<String>(id)
        .map(|occ| occ.map(|g| g.cloned().collect()).collect())
        .unwrap_or_default()
}

repo_action_flag!(
    /// `--repository R ACTION...`, optional.
    Repositories,
    "repository",
    "REPOSITORY followed by its actions (content/read, content/write, content/delete, metadata/read, metadata/write); repeatable. REPOSITORY may end in /* or be *",
    false
);
repo_action_flag!(
    /// `--repository R ACTION...`, at least once.
    RequiredRepositories,
    "repository",
    "REPOSITORY followed by its actions (content/read, content/write, content/delete, metadata/read, metadata/write); repeatable. REPOSITORY may end in /* or be *",
    true
);
repo_action_flag!(
    /// `--add-repository R ACTION...`.
    AddRepositories,
    "add-repository",
    "REPOSITORY followed by actions to add; repeatable",
    false
);
repo_action_flag!(
    /// `--remove-repository R ACTION...`.
    RemoveRepositories,
    "remove-repository",
    "REPOSITORY followed by actions to remove; repeatable",
    false
);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        repository: Repositories,
    }

    #[test]
    fn keeps_occurrences_apart() {
        let t = T::parse_from([
            "t",
            "--repository",
            "a",
            "content/read",
            "content/write",
            "--repository",
            "b/*",
            "metadata/read",
        ]);
        assert_eq!(
            t.repository.0,
            vec![
                vec![
                    "a".to_string(),
                    "content/read".into(),
                    "content/write".into()
                ],
                vec!["b/*".to_string(), "metadata/read".into()],
            ]
        );
        assert!(T::try_parse_from(["t", "--repository", "a"]).is_err());
    }
}
