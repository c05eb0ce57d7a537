//! The Debian package: the man pages and completions build.rs renders, and a .deb made from
//! `[package.metadata.deb]` in Cargo.toml that `lintian` passes with no error and no warning.
//!
//! The .deb is assembled here with `dpkg-deb` from the very asset list `cargo deb` reads,
//! with the test build's binary (stripped, as `cargo deb` strips it) instead of a release
//! build: one debug build serves the whole suite, and lintian judges the package's shape,
//! not the optimiser. What `cargo deb` adds by itself is done the way it does it: the control
//! file from the metadata (Maintainer from `authors`, `$auto` from `dpkg-shlibdeps`), man
//! pages and the changelog gzipped, the system unit from `systemd-units`, `#DEBHELPER#` in
//! the maintainer script (here left empty: the deb-systemd-helper lines are cargo-deb's).
//! Without `lintian`, `dpkg-deb` or `dpkg-shlibdeps` these tests fail (they do not skip):
//! `apt-get install -y lintian` (.ci/run does).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;

/// The package's name, the binary's, and the stem of every generated file.
const NAME: &str = "slack-statusd";
/// Where the asset list names the release binary; the test build's stands in for it.
const RELEASE_BINARY: &str = "target/release/slack-statusd";
/// Where the asset list names build.rs's output folder (a glob: the hash varies).
const OUT_DIR_GLOB: &str = "target/release/build/slack-statusd-*/out/";

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Run `program` with `args`; fail the test with its output unless it succeeds.
fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e}. On Debian/Ubuntu: apt-get install -y lintian (it brings dpkg-dev)")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout_of(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    String::from_utf8(run(program, args, dir).stdout).unwrap()
}

/// The subcommands `--help` of `args` lists under "Commands:", as the binary itself says.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("--help");
    let help = stdout_of(common::bin().to_str().unwrap(), &all, None);
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "no Commands: section in:\n{help}");
    names
}

fn generated(file: &str) -> String {
    let path = Path::new(env!("OUT_DIR")).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("build.rs did not produce {}: {e}", path.display()))
}

#[test]
fn man_pages_and_completions_name_every_subcommand() {
    let top = subcommands(&[]);
    let queue = subcommands(&["queue"]);
    for expected in ["run", "check", "preview", "set", "queue", "status"] {
        assert!(top.iter().any(|c| c == expected), "{expected} in {top:?}");
    }

    // roff escapes '-' as "\-".
    let page = generated(&format!("{NAME}.1")).replace("\\-", "-");
    assert!(page.contains(".TH slack-statusd 1"), "{page}");
    for command in &top {
        assert!(
            page.contains(&format!("{NAME}-{command}(1)")),
            "the man page does not list {command}:\n{page}"
        );
        let sub = generated(&format!("{NAME}-{command}.1")).replace("\\-", "-");
        assert!(sub.contains(&format!(".TH {NAME}-{command} 1")), "{sub}");
    }
    for action in &queue {
        generated(&format!("{NAME}-queue-{action}.1"));
    }

    for file in [
        format!("{NAME}.bash"),
        format!("_{NAME}"),
        format!("{NAME}.fish"),
    ] {
        let script = generated(&file);
        for command in top.iter().chain(&queue) {
            assert!(
                script.contains(command.as_str()),
                "{file} does not complete {command}"
            );
        }
        // A flag of a subcommand, so the completion goes below the first level.
        assert!(script.contains("dry-run"), "{file} lacks run --dry-run");
    }
}

/// Cargo.toml, parsed.
fn manifest() -> toml::Table {
    std::fs::read_to_string(repo_file("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

fn string<'a>(table: &'a toml::Table, key: &str) -> &'a str {
    table
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("Cargo.toml: no string {key}"))
}

/// The files an asset's source names: the binary, a glob in build.rs's output, or a file of
/// the repository.
fn asset_sources(source: &str) -> Vec<PathBuf> {
    if source == RELEASE_BINARY {
        return vec![common::bin()];
    }
    let Some(pattern) = source.strip_prefix(OUT_DIR_GLOB) else {
        return vec![repo_file(source)];
    };
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    let exact = !pattern.contains('*');
    let mut found: Vec<PathBuf> = std::fs::read_dir(env!("OUT_DIR"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            if exact {
                name == pattern
            } else {
                name.starts_with(prefix)
                    && name.ends_with(suffix)
                    && name.len() >= prefix.len() + suffix.len()
            }
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no file in OUT_DIR matches {source}");
    found
}

fn gzip_to(source: &Path, target: &Path) {
    let output = run("gzip", &["-9n", "-c", source.to_str().unwrap()], None);
    std::fs::write(target, output.stdout).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copy one asset into the staging tree, as `cargo deb` installs it.
fn stage_asset(root: &Path, source: &Path, target: &str, mode: u32) {
    let mut target = if target.ends_with('/') {
        root.join(target).join(source.file_name().unwrap())
    } else {
        root.join(target)
    };
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    if source == common::bin() {
        run(
            "strip",
            &[
                "--strip-unneeded",
                "-o",
                target.to_str().unwrap(),
                source.to_str().unwrap(),
            ],
            None,
        );
    } else if target.starts_with(root.join("usr/share/man")) {
        target.set_extension("1.gz");
        gzip_to(source, &target);
    } else {
        std::fs::copy(source, &target).unwrap();
    }
    set_mode(&target, mode);
}

/// The extended description as a control field continues it: lines of at most 79
/// characters, each after one space.
fn wrap_description(text: &str) -> String {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().unwrap();
        if !line.is_empty() && line.len() + 1 + word.len() > 78 {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
        .iter()
        .map(|l| format!(" {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The version the changelog's first entry gives, which must be Cargo's plus a revision.
fn changelog_version(package_version: &str) -> String {
    let text = std::fs::read_to_string(repo_file("packaging/debian/changelog")).unwrap();
    let first = text.lines().next().unwrap();
    let version = first
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(v, _)| v.to_string())
        .unwrap_or_else(|| panic!("packaging/debian/changelog: no version in {first:?}"));
    assert!(
        version.starts_with(&format!("{package_version}-")),
        "packaging/debian/changelog is at {version}, Cargo.toml at {package_version}: add an \
         entry for {package_version}-1"
    );
    version
}

/// Build the .deb once for every test of this file; its path.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(build_deb)
}

fn build_deb() -> PathBuf {
    let manifest = manifest();
    let package = manifest["package"].as_table().unwrap();
    let meta = package["metadata"]["deb"].as_table().unwrap();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging");
    let _ = std::fs::remove_dir_all(&work);
    // dpkg-shlibdeps wants a debian/control and the binary inside debian/<package>/.
    let root = work.join("debian").join(NAME);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        work.join("debian/control"),
        format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"),
    )
    .unwrap();

    for asset in meta["assets"].as_array().unwrap() {
        let asset: Vec<&str> = asset
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let [source, target, mode] = asset[..] else {
            panic!("Cargo.toml: an asset is [source, target, mode], not {asset:?}");
        };
        let mode = u32::from_str_radix(mode, 8).unwrap();
        for file in asset_sources(source) {
            stage_asset(&root, &file, target, mode);
        }
    }
    // What `changelog =` and `systemd-units =` make cargo-deb install.
    let doc = root.join(format!("usr/share/doc/{NAME}"));
    gzip_to(
        &repo_file(string(meta, "changelog")),
        &doc.join("changelog.Debian.gz"),
    );
    set_mode(&doc.join("changelog.Debian.gz"), 0o644);
    let units = meta["systemd-units"]["unit-scripts"].as_str().unwrap();
    stage_asset(
        &root,
        &repo_file(&format!("{units}{NAME}.service")),
        "usr/lib/systemd/system/",
        0o644,
    );
    let scripts = string(meta, "maintainer-scripts");
    let postinst = std::fs::read_to_string(repo_file(&format!("{scripts}postinst"))).unwrap();
    assert!(
        postinst.contains("#DEBHELPER#"),
        "postinst lacks #DEBHELPER#"
    );
    std::fs::write(
        root.join("DEBIAN/postinst"),
        postinst.replace("#DEBHELPER#\n", ""),
    )
    .unwrap();
    set_mode(&root.join("DEBIAN/postinst"), 0o755);
    let conffiles: Vec<&str> = meta["conf-files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    std::fs::write(root.join("DEBIAN/conffiles"), conffiles.join("\n") + "\n").unwrap();

    // Every folder 0755, whatever the umask made of it.
    let dirs = stdout_of("find", &[".", "-type", "d"], Some(&root));
    for dir in dirs.lines() {
        set_mode(&root.join(dir), 0o755);
    }
    let md5sums = stdout_of(
        "sh",
        &[
            "-c",
            "find . -type f ! -path './DEBIAN/*' -printf '%P\\0' | sort -z | xargs -0 md5sum",
        ],
        Some(&root),
    );
    std::fs::write(root.join("DEBIAN/md5sums"), md5sums).unwrap();
    set_mode(&root.join("DEBIAN/md5sums"), 0o644);

    let shlibs = stdout_of(
        "dpkg-shlibdeps",
        &["-O", "-e", &format!("debian/{NAME}/usr/bin/{NAME}")],
        Some(&work),
    );
    let auto = shlibs
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or_else(|| panic!("dpkg-shlibdeps printed no shlibs:Depends: {shlibs}"));
    let installed_kb = stdout_of("du", &["-sk", "--exclude=DEBIAN", "."], Some(&root));
    let installed_kb = installed_kb.split_whitespace().next().unwrap();
    let arch = stdout_of("dpkg", &["--print-architecture"], None);
    let authors = package["authors"].as_array().unwrap();
    let control = format!(
        "Package: {NAME}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {maintainer}\n\
         Installed-Size: {installed_kb}\nDepends: {depends}\nRecommends: {recommends}\n\
         Section: {section}\nPriority: {priority}\nDescription: {summary}\n{extended}\n",
        version = changelog_version(string(package, "version")),
        arch = arch.trim(),
        maintainer = authors[0].as_str().unwrap(),
        depends = string(meta, "depends").replace("$auto", auto),
        recommends = string(meta, "recommends"),
        section = string(meta, "section"),
        priority = string(meta, "priority"),
        summary = string(package, "description"),
        extended = wrap_description(string(meta, "extended-description")),
    );
    std::fs::write(root.join("DEBIAN/control"), control).unwrap();
    set_mode(&root.join("DEBIAN/control"), 0o644);

    let deb = work.join(format!("{NAME}.deb"));
    run(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "-Zgzip",
            "--build",
            root.to_str().unwrap(),
            deb.to_str().unwrap(),
        ],
        None,
    );
    deb
}

#[test]
fn the_deb_ships_the_man_page_completions_changelog_and_copyright() {
    let listing = stdout_of("dpkg-deb", &["--contents", deb().to_str().unwrap()], None);
    for path in [
        "./usr/bin/slack-statusd",
        "./usr/lib/systemd/system/slack-statusd.service",
        "./usr/lib/systemd/user/slack-statusd.service",
        "./etc/slack-statusd/config.toml",
        "./usr/share/man/man1/slack-statusd.1.gz",
        "./usr/share/man/man1/slack-statusd-queue-retry.1.gz",
        "./usr/share/bash-completion/completions/slack-statusd",
        "./usr/share/zsh/vendor-completions/_slack-statusd",
        "./usr/share/fish/vendor_completions.d/slack-statusd.fish",
        "./usr/share/doc/slack-statusd/changelog.Debian.gz",
        "./usr/share/doc/slack-statusd/copyright",
        "./usr/share/doc/slack-statusd/examples/credstore.conf",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} is not in the .deb:\n{listing}"
        );
    }
    let control = stdout_of(
        "dpkg-deb",
        &["--field", deb().to_str().unwrap(), "Maintainer"],
        None,
    );
    assert!(
        control.starts_with("slack-statusd developers <") && !control.contains("example.invalid"),
        "Maintainer: {control}"
    );
    // The folders the unit and the config name are made at configure time.
    let postinst = stdout_of(
        "dpkg-deb",
        &["--info", deb().to_str().unwrap(), "postinst"],
        None,
    );
    for dir in [
        "/etc/slack-statusd/config.d",
        "/etc/slack-statusd/credentials",
    ] {
        assert!(
            postinst
                .lines()
                .any(|l| l.trim_start().starts_with("install -d") && l.ends_with(dir)),
            "the package's postinst does not create {dir}:\n{postinst}"
        );
    }
}

#[test]
fn lintian_reports_no_error_and_no_warning() {
    let output = Command::new("lintian")
        .args(["--tag-display-limit", "0", deb().to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lintian: {e}. On Debian/Ubuntu: apt-get install -y lintian")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("lintian said:\n{stdout}{stderr}");
    let bad: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(
        bad.is_empty(),
        "lintian found errors or warnings:\n{}",
        bad.join("\n")
    );
    // lintian exits non-zero on errors by default; anything else is a lintian failure.
    assert!(output.status.success(), "lintian failed:\n{stdout}{stderr}");
}
