//! placeholder
use anyhow::Result;
use crate::cli::OnboardArgs;
use crate::ctx::Ctx;
use crate::output::Report;
pub async fn run(_ctx: &Ctx, _args: &OnboardArgs) -> Result<Report> { anyhow::bail!("not yet") }
