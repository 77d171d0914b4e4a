//! `allonet demo`: the main job on data bundled into the binary; the engine runs each step
//! ([`allonet_engine::rehearsal`]), the report shows it.

use allonet_engine::rehearsal as step;
use allonet_report::demo as show;
use anyhow::Result;

#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {}

/// The ten steps in order, each printed as soon as it is done.
pub fn run(_: &DemoArgs) -> Result<()> {
    print!("{}", show::intro());
    let rounds = step::demo_rounds()?;
    print!("{}", show::rounds(&rounds));
    print!("{}", show::retro(&step::demo_retro()?));
    let (vote, file) = step::demo_vote()?;
    print!("{}", show::vote(&vote, &file));
    print!("{}", show::model(&step::demo_model()?));
    print!("{}", crate::allocate::demo()?);
    let qf = &rounds[0].1;
    print!("{}", show::flow(&step::demo_flow(qf)?));
    let dir = std::env::temp_dir().join(format!("allonet-demo-{}", std::process::id()));
    let paid = step::demo_governance(qf, &dir).and_then(|(g, mut audit)| {
        print!("{}", show::governance(&g));
        print!("{}", show::treasury(&step::demo_treasury()?));
        step::money_path(qf, &dir, &mut audit, g.now)
    });
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", show::money_path(&paid?, &qf.config.token));
    print!("{}", crate::agent::demo()?);
    print!("{}", show::outro());
    Ok(())
}
