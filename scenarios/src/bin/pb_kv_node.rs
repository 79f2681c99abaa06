//! `pb-kv-node`: a pb-kv replica as a real process (built with `cargo real-build`). It is the
//! simulated replica's code, [`gauntlet_scenarios::pbkv::node::run`], on tokio's sockets: the
//! same hyper server and clients over `gauntlet_sim::net`, which is tokio's in this build.
//!
//! ```text
//! pb-kv-node --id 0 --role primary --primary 0 --listen 127.0.0.1:8100 --data ./p0 \
//!            --backups 127.0.0.1:8101,127.0.0.1:8102
//! ```
//!
//! Every flag can also come from the environment: `PB_KV_ID`, `PB_KV_ROLE` (`primary` or
//! `backup`), `PB_KV_PRIMARY` (the primary's id, named in a backup's redirects), `PB_KV_LISTEN`,
//! `PB_KV_DATA`, `PB_KV_BACKUPS` (the primary's; `host:port`, comma-separated; names resolve
//! through DNS, as compose and kubernetes name their nodes), `PB_KV_BUGS` (planted bugs,
//! comma-separated; default none). Flags win. The HTTP API is in
//! [`gauntlet_scenarios::pbkv::node`].

#[cfg(madsim)]
fn main() {
    gauntlet_sim::assert_real_build();
}

#[cfg(not(madsim))]
fn main() {
    gauntlet_sim::assert_real_build();
    if let Err(e) = real::main() {
        eprintln!("pb-kv-node: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(madsim))]
mod real {
    use gauntlet_scenarios::pbkv::bugs::Bugs;
    use gauntlet_scenarios::pbkv::node::{run, NodeConfig};
    use gauntlet_scenarios::realnode::{parse, required, setting};
    use gauntlet_sim::Disk;

    pub fn main() -> Result<(), String> {
        let args: Vec<String> = std::env::args().collect();
        let id: u32 = parse("--id", &required(&args, "--id", "PB_KV_ID")?)?;
        let role = required(&args, "--role", "PB_KV_ROLE")?;
        if role != "primary" && role != "backup" {
            return Err(format!("--role {role:?}: a replica is a primary or a backup"));
        }
        let primary_id: u32 = parse("--primary", &setting(&args, "--primary", "PB_KV_PRIMARY").unwrap_or_default())?;
        let listen = required(&args, "--listen", "PB_KV_LISTEN")?;
        let data = required(&args, "--data", "PB_KV_DATA")?;
        let backups_text = setting(&args, "--backups", "PB_KV_BACKUPS").unwrap_or_default();
        let bugs_text = setting(&args, "--bugs", "PB_KV_BUGS").unwrap_or_default();
        let bugs = Bugs::parse(bugs_text.split(',').filter(|b| !b.is_empty()))?;
        let backups = backups_text.split(',').filter(|b| !b.is_empty()).map(str::to_owned).collect();
        let disk = Disk::open(&data).map_err(|e| format!("--data {data}: {e}"))?;
        let config = NodeConfig { id, primary: role == "primary", primary_id, listen: listen.clone(), backups, bugs };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let local = tokio::task::LocalSet::new();
        eprintln!("pb-kv-node: {role} {id} serving HTTP on {listen}");
        local.block_on(&rt, run(config, disk))
    }
}
