//! The command lines beside the terminal UI and the server: shell completions and manual
//! pages for both binaries.

use std::process::Command;

use catalog_tests::bin;

fn run(args: &[&str]) -> String {
    let out = Command::new(bin("catalog"))
        .args(args)
        .output()
        .expect("catalog runs");
    assert!(out.status.success(), "catalog {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn completions_for_each_shell_name_the_subcommands_and_flags() {
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_catalog()"), "{bash}");
    for word in ["--server", "--token", "--no-if-match", "bot", "completions"] {
        assert!(bash.contains(word), "bash completion offers {word}");
    }
    let zsh = run(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef catalog"), "{zsh}");
    let fish = run(&["completions", "fish"]);
    assert!(fish.contains("complete -c catalog"), "{fish}");
}

#[test]
fn the_manual_page_is_roff_for_catalog() {
    let man = run(&["man"]);
    assert!(man.contains(".TH catalog 1"), "{man}");
    assert!(man.contains("\\-\\-token"), "documents --token");
}

#[test]
fn the_server_has_completions_and_a_manual_page_too() {
    let out = Command::new(bin("catalog-server"))
        .args(["completions", "bash"])
        .output()
        .expect("catalog-server runs");
    let bash = String::from_utf8_lossy(&out.stdout);
    assert!(bash.contains("complete -F _catalog__server"), "{bash}");
    assert!(bash.contains("--users"), "{bash}");
    let out = Command::new(bin("catalog-server"))
        .arg("man")
        .output()
        .expect("catalog-server runs");
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH catalog-server 1"), "{man}");
}
