//! Civil calendar for world B: days since the epoch, time zones with their DST rules, UK bank
//! holidays, paydays and month ends, diurnal curves. Integer arithmetic only (no time crate),
//! so nothing here can fail.

use rand::Rng;

pub const MINUTE: u64 = 60_000;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1–12, day 1–31) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// 0 = Monday … 6 = Sunday.
pub fn weekday(day: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    (day + 3).rem_euclid(7) as u32
}

pub fn is_weekend(day: i64) -> bool {
    weekday(day) >= 5
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as u32
}

/// Last Sunday of a month, as a day number.
fn last_sunday(y: i64, m: u32) -> i64 {
    let last = days_from_civil(y, m, days_in_month(y, m));
    last - i64::from((weekday(last) + 1) % 7)
}

/// n-th (1-based) Sunday of a month.
fn nth_sunday(y: i64, m: u32, n: u32) -> i64 {
    let first = days_from_civil(y, m, 1);
    let to_sunday = (6 + 7 - weekday(first)) % 7;
    first + i64::from(to_sunday) + 7 * i64::from(n - 1)
}

/// Easter Sunday (anonymous Gregorian algorithm).
fn easter(y: i64) -> i64 {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    days_from_civil(y, month as u32, day as u32)
}

/// England & Wales bank holidays (substitute days for weekend Christmas/New Year included).
pub fn is_uk_bank_holiday(day: i64) -> bool {
    let (y, _, _) = civil_from_days(day);
    let e = easter(y);
    if day == e - 2 || day == e + 1 {
        return true;
    }
    let first_monday = |mm: u32| {
        let f = days_from_civil(y, mm, 1);
        f + i64::from((7 - weekday(f)) % 7)
    };
    let last_monday = |mm: u32| {
        let l = days_from_civil(y, mm, days_in_month(y, mm));
        l - i64::from(weekday(l))
    };
    if day == first_monday(5) || day == last_monday(5) || day == last_monday(8) {
        return true;
    }
    let observed = |mm: u32, dd: u32, shift_if_sat: i64, shift_if_sun: i64| {
        let base = days_from_civil(y, mm, dd);
        match weekday(base) {
            5 => base + shift_if_sat,
            6 => base + shift_if_sun,
            _ => base,
        }
    };
    day == observed(1, 1, 2, 1) || day == observed(12, 25, 2, 2) || day == observed(12, 26, 2, 2)
}

pub fn is_business_day(day: i64) -> bool {
    !is_weekend(day) && !is_uk_bank_holiday(day)
}

fn previous_business_day_or_same(mut day: i64) -> i64 {
    while !is_business_day(day) {
        day -= 1;
    }
    day
}

/// Monthly payday: the 25th, or the business day before it.
pub fn is_payday_25(day: i64) -> bool {
    let (y, m, _) = civil_from_days(day);
    previous_business_day_or_same(days_from_civil(y, m, 25)) == day
}

/// Last business day of the month (month-end payroll, supplier runs, statements).
pub fn is_month_end(day: i64) -> bool {
    let (y, m, _) = civil_from_days(day);
    previous_business_day_or_same(days_from_civil(y, m, days_in_month(y, m))) == day
}

/// Time zones the simulated users and cron jobs live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tz {
    /// Europe/London (GMT/BST).
    London,
    /// Europe/Paris (CET/CEST), same DST dates as London.
    Paris,
    /// Europe/Madrid.
    Madrid,
    /// America/New_York: DST starts three weeks before Europe's.
    NewYork,
}

impl Tz {
    /// Offset from UTC in minutes at a UTC instant.
    pub fn offset_min(self, ts_ms: u64) -> i64 {
        let day = (ts_ms / DAY) as i64;
        let (y, _, _) = civil_from_days(day);
        let ts = ts_ms as i64;
        let eu_dst = || {
            let on = last_sunday(y, 3) * DAY as i64 + HOUR as i64;
            let off = last_sunday(y, 10) * DAY as i64 + HOUR as i64;
            ts >= on && ts < off
        };
        match self {
            Tz::London => {
                if eu_dst() {
                    60
                } else {
                    0
                }
            }
            Tz::Paris | Tz::Madrid => {
                if eu_dst() {
                    120
                } else {
                    60
                }
            }
            Tz::NewYork => {
                // 02:00 local = 07:00 UTC (EST) on; 02:00 EDT = 06:00 UTC off.
                let on = nth_sunday(y, 3, 2) * DAY as i64 + 7 * HOUR as i64;
                let off = nth_sunday(y, 11, 1) * DAY as i64 + 6 * HOUR as i64;
                if ts >= on && ts < off { -240 } else { -300 }
            }
        }
    }

    /// UTC instant of a local wall-clock time given as "ms since the epoch in local time".
    /// In the spring gap the time is pushed forward; in the autumn overlap the first one wins.
    pub fn to_utc(self, local_ms: i64) -> u64 {
        let guess = local_ms - self.offset_min(local_ms.max(0) as u64) * MINUTE as i64;
        let off = self.offset_min(guess.max(0) as u64);
        (local_ms - off * MINUTE as i64).max(0) as u64
    }

    /// UTC instant of `hour:minute` local time on local day `day`.
    pub fn at(self, day: i64, hour: u32, minute: u32) -> u64 {
        self.to_utc(
            day * DAY as i64 + i64::from(hour) * HOUR as i64 + i64::from(minute) * MINUTE as i64,
        )
    }
}

/// Relative activity per local hour.
pub type Curve = [f32; 24];

/// Retail banking app opens: morning commute, lunch, evening peak, little at night.
pub const RETAIL_APP: Curve = [
    0.15, 0.08, 0.05, 0.04, 0.05, 0.15, 0.45, 1.00, 1.35, 1.10, 0.95, 1.00, 1.45, 1.30, 1.00, 0.95,
    1.05, 1.30, 1.50, 1.65, 1.70, 1.45, 0.95, 0.45,
];

/// E-commerce checkouts: evening peak, lunchtime bump.
pub const ECOMMERCE: Curve = [
    0.20, 0.10, 0.05, 0.04, 0.04, 0.08, 0.20, 0.40, 0.60, 0.75, 0.85, 0.95, 1.25, 1.15, 0.95, 0.90,
    0.95, 1.10, 1.40, 1.85, 2.10, 1.90, 1.30, 0.60,
];

/// Office hours (accountants, lenders' underwriting, payroll clerks).
pub const OFFICE: Curve = [
    0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.30, 0.90, 1.40, 1.50, 1.40, 0.90, 1.20, 1.45, 1.35,
    1.10, 0.70, 0.30, 0.15, 0.10, 0.08, 0.04, 0.02,
];

/// Card shopping (funds confirmations): lunch, after work, late evening online.
pub const SHOPPING: Curve = [
    0.15, 0.08, 0.05, 0.03, 0.03, 0.06, 0.20, 0.45, 0.70, 0.85, 1.00, 1.20, 1.60, 1.45, 1.05, 1.00,
    1.15, 1.50, 1.70, 1.60, 1.45, 1.10, 0.70, 0.35,
];

/// A local hour drawn from a curve, then a uniform minute/second/ms inside it: UTC instant.
pub fn sample_in_day<R: Rng>(rng: &mut R, tz: Tz, day: i64, curve: &Curve) -> u64 {
    let total: f32 = curve.iter().sum();
    let mut x = rng.gen_range(0.0..total);
    let mut hour = 23u32;
    for (h, w) in curve.iter().enumerate() {
        if x < *w {
            hour = h as u32;
            break;
        }
        x -= *w;
    }
    tz.at(day, hour, 0) + rng.gen_range(0..HOUR)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn fmt_ts(ts_ms: u64) -> String {
    let day = (ts_ms / DAY) as i64;
    let (y, m, d) = civil_from_days(day);
    let rem = ts_ms % DAY;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / HOUR,
        (rem % HOUR) / MINUTE,
        (rem % MINUTE) / 1000,
        rem % 1000
    )
}

/// `YYYY-MM-DDTHH:MM:SS` (the ISODateTime OB query parameters use), UTC.
pub fn fmt_iso_seconds(ts_ms: u64) -> String {
    let day = (ts_ms / DAY) as i64;
    let (y, m, d) = civil_from_days(day);
    let rem = ts_ms % DAY;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / HOUR,
        (rem % HOUR) / MINUTE,
        (rem % MINUTE) / 1000
    )
}

/// Parse `YYYY-MM-DD` or an RFC 3339 instant (`…T…Z` / `…±hh:mm`), to Unix ms.
pub fn parse_start(s: &str) -> Option<u64> {
    let s = s.trim();
    let num = |a: usize, b: usize| s.get(a..b).and_then(|t| t.parse::<u32>().ok());
    let y = num(0, 4)?;
    let m = num(5, 7)?;
    let d = num(8, 10)?;
    if s.get(4..5) != Some("-")
        || s.get(7..8) != Some("-")
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let day = days_from_civil(i64::from(y), m, d);
    if s.len() == 10 {
        return u64::try_from(day).ok().map(|d| d * DAY);
    }
    let parsed =
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_weekdays() {
        let d = days_from_civil(2026, 3, 16);
        assert_eq!(civil_from_days(d), (2026, 3, 16));
        assert_eq!(weekday(d), 0, "2026-03-16 is a Monday");
        assert_eq!(last_sunday(2026, 3), days_from_civil(2026, 3, 29));
        assert_eq!(nth_sunday(2026, 3, 2), days_from_civil(2026, 3, 8));
        assert_eq!(easter(2026), days_from_civil(2026, 4, 5));
        assert!(is_uk_bank_holiday(days_from_civil(2026, 4, 3)));
        assert!(is_payday_25(days_from_civil(2026, 3, 25)));
        assert!(
            is_payday_25(days_from_civil(2026, 4, 24)),
            "25 April 2026 is a Saturday"
        );
        assert!(is_month_end(days_from_civil(2026, 3, 31)));
    }

    #[test]
    fn dst_moves_the_london_cron() {
        let before = days_from_civil(2026, 3, 28);
        let after = days_from_civil(2026, 3, 30);
        assert_eq!(Tz::London.at(before, 2, 0) % DAY, 2 * HOUR);
        assert_eq!(Tz::London.at(after, 2, 0) % DAY, HOUR);
        assert_eq!(Tz::Paris.at(after, 1, 30) % DAY, 23 * HOUR + 30 * MINUTE);
        assert_eq!(fmt_ts(1_767_604_502_120), "2026-01-05T09:15:02.120Z");
        assert_eq!(parse_start("2026-01-05"), Some(1_767_571_200_000));
        assert_eq!(
            parse_start("2026-01-05T09:15:02.120Z"),
            Some(1_767_604_502_120)
        );
    }
}
