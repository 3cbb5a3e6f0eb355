//! `./demo.sh` in an 80x24 terminal, as a newcomer runs it: two client panes of about
//! 40x14 above the server's log. The race is played to the merge, and each step is read
//! from bob's pane: his conflict panel shows alice's price and his own status, says that
//! nothing was lost, and `l` shows the exchanges with their If-Match and ETag.

use std::time::Duration;

use catalog_tests::tmux::{Tmux, flat};

const WAIT: Duration = Duration::from_secs(30);

/// The demo's own tmux server (its panes are the clients).
struct Inner {
    socket: String,
}

impl Inner {
    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane whose command names `user`.
    fn pane(&self, user: &str) -> String {
        let list = self.run(&[
            "list-panes",
            "-s",
            "-t",
            "demo",
            "-F",
            "#{pane_id} #{pane_start_command}",
        ]);
        list.lines()
            .find(|l| l.contains(&format!("--user {user}")))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("no pane for {user}: {list}"))
            .to_string()
    }

    fn keys(&self, pane: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", pane];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn type_text(&self, pane: &str, text: &str) {
        self.run(&["send-keys", "-t", pane, "-l", text]);
    }

    fn screen(&self, pane: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", pane])
    }

    fn size(&self, pane: &str) -> String {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            pane,
            "#{pane_width}x#{pane_height}",
        ])
        .trim()
        .to_string()
    }

    /// Waits until the pane shows what `done` checks; fails with the screen it had.
    fn wait(&self, pane: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen(pane);
            if done(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} never showed in {pane} ({}):\n{screen}",
                self.size(pane)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, pane: &str, needle: &str) -> String {
        self.wait(pane, needle, |s| {
            s.contains(needle) || flat(s).contains(needle)
        })
    }
}

/// The row of the conflict panel that starts with `field`.
fn row<'a>(screen: &'a str, field: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with(field))
        .unwrap_or_else(|| panic!("no {field} row:\n{screen}"))
}

#[tokio::test]
async fn the_race_can_be_followed_in_an_80x24_terminal() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let inner = Inner {
        socket: format!("catalog-e2e-demo80-{}", std::process::id()),
    };
    let target = catalog_tests::bin_dir().parent().unwrap().to_path_buf();
    let mut t = Tmux::new();
    let cmd = format!(
        "cd {root} && CATALOG_DEMO_SKIP_BUILD=1 CARGO_TARGET_DIR={target} CATALOG_DEMO_TMUX_SOCKET={socket} TMPDIR={tmp} bash demo.sh; echo DEMO-EXITED-$?",
        root = root.display(),
        target = target.display(),
        socket = inner.socket,
        tmp = tmp.path().display(),
    );
    t.start("demo", 80, 24, &cmd).unwrap();
    t.wait_until(
        "demo",
        |s| s.matches("Catalog: 25 products").count() == 2 && s.matches("● live").count() == 2,
        WAIT,
    )
    .unwrap();
    let (alice, bob) = (inner.pane("alice"), inner.pane("bob"));
    // Both open the BBQ; bob marks it out of stock; alice lowers the price and saves.
    for pane in [&alice, &bob] {
        inner.keys(pane, &["Enter"]);
        inner.wait_for(pane, "Edit product 1: BBQ-KETTLE-57");
    }
    inner.keys(&bob, &["Tab", "Tab", "Tab", "Down"]);
    inner.wait_for(&bob, "out_of_stock");
    inner.keys(&alice, &["Tab", "Tab", "Home", "C-k"]);
    inner.type_text(&alice, "300.00");
    inner.keys(&alice, &["C-s"]);
    inner.wait_for(&alice, "Saved BBQ-KETTLE-57");
    // Bob is warned before he saves, and told what to do.
    let stale = inner.wait_for(&bob, "alice changed price");
    assert!(
        flat(&stale).contains("press Ctrl-S anyway."),
        "the guide's instruction, whole ({}):\n{stale}",
        inner.size(&bob)
    );
    inner.keys(&bob, &["C-s"]);
    // His conflict panel: alice's price and his status, what happened, what to do.
    let panel = inner.wait_for(&bob, "Conflict: product 1");
    let size = inner.size(&bob);
    assert!(
        row(&panel, "price").contains("$300.00"),
        "alice's price ({size}):\n{panel}"
    );
    assert!(
        row(&panel, "status").contains("out_of"),
        "his status ({size}):\n{panel}"
    );
    let text = flat(&panel);
    assert!(
        text.contains("412: alice saved version 2 first."),
        "{size}:\n{panel}"
    );
    assert!(
        text.contains("Nothing of yours was lost."),
        "{size}:\n{panel}"
    );
    assert!(text.contains("m merges"), "{size}:\n{panel}");
    inner.keys(&bob, &["m"]);
    inner.wait_for(&bob, "Done: version 3");
    // The headers that did it.
    inner.keys(&bob, &["l"]);
    let log = inner.wait_for(&bob, "Protocol log");
    let with_tags = log
        .lines()
        .filter(|l| l.contains("If-Match \"") && l.contains("ETag \""))
        .count();
    assert!(
        with_tags >= 2,
        "two exchanges with If-Match and ETag ({}):\n{log}",
        inner.size(&bob)
    );
    assert!(log.contains("PUT /products/1 412"), "{log}");
    // Esc returns to the catalog; q in both ends the demo.
    inner.keys(&bob, &["Escape"]);
    inner.wait(&bob, "the catalog again", |s| {
        s.contains("Catalog: 25 products") && !s.contains("Protocol log")
    });
    for pane in [&alice, &bob] {
        inner.keys(pane, &["q"]);
    }
    t.wait_for("demo", "DEMO-EXITED-0", WAIT).unwrap();
}
