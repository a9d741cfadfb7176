//! Every table, figure and report file of the small grid's report exists and is well-formed.

use crate::util::{read_csv, small_grid, small_report};

#[test]
fn every_table_figure_and_report_file_is_written() {
    let r = small_report();
    for t in [
        "tasks.csv",
        "tasks.md",
        "exit_shares.csv",
        "fig12_wins.csv",
        "fig12_wins.md",
        "fig13_p95.csv",
        "fig13_p95.md",
        "nlp_diffs.csv",
        "nlp_diffs.md",
        "output_cv.txt",
        "output_nlp.txt",
    ] {
        let p = r.join("tables").join(t);
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 0),
            "{}",
            p.display()
        );
    }
    for f in ["fig12_cv_wins", "fig13_cv_p95", "fig14_nlp_cdf"] {
        let png = std::fs::read(r.join("figures").join(format!("{f}.png"))).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f}.png");
        let svg = std::fs::read_to_string(r.join("figures").join(format!("{f}.svg"))).expect("svg");
        assert!(svg.contains("<svg"), "{f}.svg");
    }
    let per_task = std::fs::read_dir(r.join("figures/tasks"))
        .expect("task figures")
        .count();
    assert_eq!(per_task, 56 * 4, "timeline + exits, PNG + SVG, per task");
    let md = std::fs::read_to_string(r.join("report.md")).expect("report.md");
    assert!(md.contains("Coverage: 56 of 56 tasks"));
    assert!(md.contains("40.5–91.5 %"), "paper's CV range side by side");
    let html = std::fs::read_to_string(r.join("report.html")).expect("report.html");
    assert!(html.contains("data:image/png;base64,"), "figures embedded");
    assert!(!html.contains("src=\"figures/"), "no external image");
}

#[test]
fn output_txt_lines_are_the_workers_in_grid_order() {
    let r = small_report();
    for grid in ["cv", "nlp"] {
        let ours =
            std::fs::read_to_string(r.join(format!("tables/output_{grid}.txt"))).expect("ours");
        let worker = std::fs::read_to_string(small_grid().join(format!("output_{grid}.txt")))
            .expect("worker's");
        assert_eq!(ours, worker, "output_{grid}.txt");
    }
}

#[test]
fn per_task_table_has_every_task_with_ordered_percentiles() {
    let rows = read_csv(&small_report().join("tables/tasks.csv"));
    assert_eq!(rows.len(), 56);
    for row in &rows {
        for kind in ["vanilla", "apparate", "optimal", "static"] {
            let q: Vec<f64> = ["p25", "p50", "p95", "p99"]
                .iter()
                .map(|p| row[&format!("{kind}_{p}_ms")].parse().expect("number"))
                .collect();
            assert!(q.windows(2).all(|w| w[0] <= w[1]), "{kind} {q:?}");
        }
        let acc: f64 = row["accuracy_pct"].parse().expect("accuracy");
        assert!((0.0..=100.0).contains(&acc));
    }
    assert_eq!(rows[0]["model"], "resnet18");
    assert_eq!(rows[0]["dataset"], "auburn");
    assert_eq!(rows[55]["model"], "gpt2-medium");
}
