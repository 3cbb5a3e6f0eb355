//! The client's command line beside the terminal UI: shell completions and the manual page.

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
