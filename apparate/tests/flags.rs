//! Durations the binaries read (`--give-up-after`, issue #16) and print (progress lines).

use apparate::duration::{format_duration, format_flag_duration, parse_duration, DurationError};
use std::time::Duration;

#[test]
fn give_up_durations_take_a_number_and_a_unit() {
    let ok = [
        ("500ms", Duration::from_millis(500)),
        ("2s", Duration::from_secs(2)),
        ("1.5s", Duration::from_millis(1500)),
        ("30", Duration::from_secs(30)),
        ("10m", Duration::from_secs(600)),
        ("2h", Duration::from_secs(7200)),
        (" 3 s ", Duration::from_secs(3)),
    ];
    for (text, d) in ok {
        assert_eq!(parse_duration(text), Ok(d), "{text}");
    }
}

#[test]
fn bad_or_zero_durations_are_refused_naming_the_value() {
    for text in ["", "s", "10 minutes", "-1s", "1e3s", "abc", ".s", "1.2.3s"] {
        let e = parse_duration(text).expect_err(text);
        assert_eq!(
            e,
            DurationError::Invalid {
                text: text.to_string()
            },
            "{text}"
        );
        assert!(e.to_string().contains("e.g. 500ms, 30s, 10m, 2h"), "{e}");
    }
    for text in ["0s", "0", "0.0001s"] {
        assert_eq!(
            parse_duration(text),
            Err(DurationError::Zero {
                text: text.to_string()
            })
        );
    }
}

#[test]
fn progress_durations_pick_their_unit() {
    assert_eq!(format_duration(Duration::from_millis(4200)), "4.2s");
    assert_eq!(format_duration(Duration::from_secs(187)), "3m07s");
    assert_eq!(format_duration(Duration::from_secs(7500)), "2h05m");
}

#[test]
fn flag_durations_are_quoted_as_given() {
    for (d, text) in [
        (Duration::from_secs(2), "2s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_secs(600), "10m"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(7200), "2h"),
    ] {
        assert_eq!(format_flag_duration(d), text);
    }
}
