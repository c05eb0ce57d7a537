//! Build-time outputs. `sqlx::migrate!` embeds the migrations, so a changed migration must
//! rebuild; and the man page and shell completions are rendered here, into `$OUT_DIR`, from
//! the very clap definition the binary parses with (a build script rather than an xtask
//! binary: every build produces them, the one the .deb is made from included, with nothing
//! extra to remember or to install).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

// Only the definition: the build script never parses arguments, so the fields stay unread.
#[allow(dead_code)]
#[path = "src/cli/args.rs"]
mod args;

/// The name the binary, the man page and the completions go by.
const NAME: &str = "slack-statusd";

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src/cli/args.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let mut command = args::Cli::command();
    // slack-statusd.1, and one page per subcommand (slack-statusd-queue-retry.1, ...) for the
    // SEE ALSO references of the main page.
    clap_mangen::generate_to(command.clone(), &out)?;

    // slack-statusd.bash, _slack-statusd and slack-statusd.fish.
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, NAME, &out)?;
    }
    Ok(())
}
