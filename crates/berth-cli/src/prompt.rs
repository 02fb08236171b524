//! Asking the person at the terminal: a line, a password without echo,
//! and the yes/no confirmation destructive verbs need.

use std::io::{BufRead, IsTerminal, Write};

/// Whether stdin is a terminal someone can answer on.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Read one line after printing `label` on stderr.
pub fn line(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// Read a password without echoing it.
pub fn password(label: &str) -> anyhow::Result<String> {
    Ok(rpassword::prompt_password(label)?)
}

/// Go ahead with `what` only when `yes` was given or the person at the
/// terminal agrees; refuse without a terminal.
pub fn confirm(yes: bool, what: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        anyhow::bail!("refusing to {what} without --yes (stdin is not a terminal to confirm on)");
    }
    let answer = line(&format!("Are you sure you want to {what}? (y/N): "))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("cancelled")
    }
}
