//! Durations in milliseconds: the one definition of the units that
//! directive values, defaults and limits are counted in (nginx's time
//! units, `ms` to `y`).

/// `s`
pub const SECOND: u64 = 1000;
/// `m`
pub const MINUTE: u64 = 60 * SECOND;
/// `h`
pub const HOUR: u64 = 60 * MINUTE;
/// `d`
pub const DAY: u64 = 24 * HOUR;
/// `w`
pub const WEEK: u64 = 7 * DAY;
/// `M`: 30 days, as in nginx.
pub const MONTH: u64 = 30 * DAY;
/// `y`: 365 days, as in nginx.
pub const YEAR: u64 = 365 * DAY;
