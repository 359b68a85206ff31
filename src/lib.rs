//! munero-infra: stand up, deploy to and tear down client-trial VMs.
//!
//! The binary is thin (`main.rs`); everything testable lives here.

pub mod acme;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod cert;
pub mod cloudinit;
pub mod commands;
pub mod config;
pub mod cost;
pub mod ctx;
pub mod deploy;
pub mod dns_query;
pub mod doctor;
pub mod echo_ip;
pub mod error;
pub mod hosts;
pub mod keys;
pub mod lock;
pub mod model_speed;
pub mod notify;
pub mod onboard;
pub mod output;
pub mod plan;
pub mod prompt;
pub mod receipt;
pub mod remote;
pub mod resolve;
pub mod schedule;
pub mod site;
pub mod smoke;
pub mod ssh;
pub mod store;
pub mod timefmt;
pub mod trial;
pub mod validate;

pub use app::run_from_args;
