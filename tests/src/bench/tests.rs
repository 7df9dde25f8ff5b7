use super::*;

#[test]
fn summarises_samples_by_nearest_rank() {
    let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!(
        (s.n, s.median, s.p99, s.min, s.max),
        (4, 3.0, 10.0, 1.0, 10.0)
    );
    let none = Summary::of(&[]);
    assert!(none.n == 0 && none.median.is_nan() && none.min.is_nan());
}

#[test]
fn rows_pad_names_counts_values_and_units() {
    let s = Summary::of(&[12.25, 7.5, 30.0]);
    // The BGP bench's layout (unit "" for counts) and the L2 bench's (units of two characters).
    assert_eq!(
        s.row("x", "", (6, 3, 7), 1),
        format!(
            "{:<6} n={:<3} median {:>7.1} {u:<2}  p99 {:>7.1} {u:<2}  min {:>7.1}  max {:>7.1}",
            "x",
            3,
            12.25,
            30.0,
            7.5,
            30.0,
            u = ""
        )
    );
    assert_eq!(
        s.row("x", "ms", (4, 2, 6), 0),
        "x    n=3  median     12 ms  p99     30 ms  min      8  max     30"
    );
}
