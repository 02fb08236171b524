//! One module per management command group.

pub mod admin;
pub mod gc;
pub mod groups;
pub mod logs;
pub mod network_rules;
pub mod registry;
pub mod repositories;
pub mod role_assignments;
pub mod scope_maps;
pub mod service_principals;
pub mod tokens;
pub mod users;
