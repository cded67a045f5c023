//! The CSV catalog format: UTF-8, comma separated, a header line naming the columns
//! (any order): `code`, `display`, `branch`, `kind`, `access`, `tariff`,
//! `valid_from`, optional `national` and `preparation`. One row per code per tariff.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::fields::{check_code, parse_date, parse_preparation, parse_tariff};
use super::{branches, is_branch, AccessKind, CatalogEntry, Kind, Progress, RowError, PROGRESS_ROWS};

/// At most this many errors are reported for one file.
const MAX_ERRORS: usize = 20;
const REQUIRED: [&str; 7] = ["code", "display", "branch", "kind", "access", "tariff", "valid_from"];
const OPTIONAL: [&str; 2] = ["national", "preparation"];

/// Parses a whole catalog CSV. Every row is checked; on any problem, the errors (up to
/// 20, each with its line, the header being line 1) and no entries.
pub fn parse_csv(text: &str) -> Result<Vec<CatalogEntry>, Vec<RowError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let columns = Columns::from_header(&header(records.next())?)?;
    let rows = text.lines().count().saturating_sub(1);
    let mut progress = Progress::new("catalog rows parsed", rows, rows > PROGRESS_ROWS);
    let mut read = Read::default();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                read.errors.push(csv_error(&e));
                break;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        progress.tick(line.saturating_sub(1));
        if !read.add(columns.entry(&record, line), line) {
            break;
        }
    }
    if read.errors.is_empty() {
        Ok(read.entries)
    } else {
        Err(read.errors)
    }
}

/// The header line; an error on line 1 when the file is empty.
fn header(first: Option<Result<::csv::StringRecord, ::csv::Error>>) -> Result<::csv::StringRecord, Vec<RowError>> {
    match first {
        None => Err(vec![RowError {
            line: 1,
            reason: format!("the file is empty: a header line naming the columns is required ({})", all_columns()),
        }]),
        Some(Err(e)) => Err(vec![csv_error(&e)]),
        Some(Ok(h)) => Ok(h),
    }
}

/// The rows read so far: their entries or errors, and where each code and each
/// tariff date of a code was first.
#[derive(Default)]
struct Read {
    entries: Vec<CatalogEntry>,
    errors: Vec<RowError>,
    first_of_code: HashMap<String, usize>,
    dates: HashMap<(String, NaiveDate), usize>,
}

impl Read {
    /// The row of `line`: its entry, or why it is not one. `false` once
    /// [`MAX_ERRORS`] errors are reported: the file is read no further.
    fn add(&mut self, entry: Result<CatalogEntry, String>, line: usize) -> bool {
        let reason = match entry {
            Ok(entry) => match conflict(&entry, &self.entries, &self.first_of_code, &self.dates) {
                None => {
                    self.first_of_code.entry(entry.code.clone()).or_insert(self.entries.len());
                    self.dates.insert((entry.code.clone(), entry.valid_from), line);
                    self.entries.push(entry);
                    return true;
                }
                Some(reason) => reason,
            },
            Err(reason) => reason,
        };
        self.errors.push(RowError { line, reason });
        self.errors.len() < MAX_ERRORS
    }
}

/// Why `entry` cannot sit beside the rows already read: the same code and date twice,
/// or a code whose attributes differ from its first row.
fn conflict(
    entry: &CatalogEntry,
    entries: &[CatalogEntry],
    first_of_code: &HashMap<String, usize>,
    dates: &HashMap<(String, NaiveDate), usize>,
) -> Option<String> {
    if let Some(line) = dates.get(&(entry.code.clone(), entry.valid_from)) {
        return Some(format!(
            "code {} with valid_from {} is already on line {line}: one row per code and tariff date",
            entry.code, entry.valid_from
        ));
    }
    let first = &entries[*first_of_code.get(&entry.code)?];
    let differs = [
        ("display", first.display.clone(), entry.display.clone()),
        ("branch", first.branch.clone(), entry.branch.clone()),
        ("kind", first.kind.code().to_string(), entry.kind.code().to_string()),
        ("access", first.access.code().to_string(), entry.access.code().to_string()),
        ("national", yes_no(first.national).to_string(), yes_no(entry.national).to_string()),
        ("preparation", first.preparation.clone().unwrap_or_default(), entry.preparation.clone().unwrap_or_default()),
    ];
    differs.into_iter().find(|(_, a, b)| a != b).map(|(column, was, here)| {
        format!(
            "code {} has {column} {here:?} here but {was:?} on line {}: display, branch, kind, access, national \
             and preparation are the same on every row of a code",
            entry.code, first.line
        )
    })
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

fn all_columns() -> String {
    format!("{},{} (optional)", REQUIRED.join(","), OPTIONAL.join(","))
}

fn csv_error(e: &::csv::Error) -> RowError {
    RowError { line: e.position().map_or(0, |p| p.line() as usize), reason: format!("unreadable CSV: {e}") }
}

/// Where each column is.
struct Columns {
    at: [usize; 7],
    national: Option<usize>,
    preparation: Option<usize>,
    width: usize,
}

impl Columns {
    fn from_header(header: &::csv::StringRecord) -> Result<Columns, Vec<RowError>> {
        let line = header.position().map_or(1, |p| p.line() as usize);
        let mut errors = Vec::new();
        let mut found: HashMap<String, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.to_ascii_lowercase();
            if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
                errors.push(format!("unknown column {name:?}; the columns are {}", all_columns()));
            } else if found.insert(name.clone(), i).is_some() {
                errors.push(format!("column {name:?} appears twice in the header"));
            }
        }
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !found.contains_key(*c)).collect();
        if !missing.is_empty() {
            errors.push(format!(
                "missing column{} {}; the header must name {}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                all_columns()
            ));
        }
        if !errors.is_empty() {
            return Err(errors.into_iter().map(|reason| RowError { line, reason }).collect());
        }
        let mut at = [0; 7];
        for (slot, name) in at.iter_mut().zip(REQUIRED) {
            *slot = found.get(name).copied().unwrap_or_default();
        }
        Ok(Columns {
            at,
            national: found.get("national").copied(),
            preparation: found.get("preparation").copied(),
            width: header.len(),
        })
    }

    fn entry(&self, r: &::csv::StringRecord, line: usize) -> Result<CatalogEntry, String> {
        if r.len() != self.width {
            return Err(format!("{} fields, but the header names {} columns", r.len(), self.width));
        }
        let field = |i: usize| r.get(self.at[i]).unwrap_or("");
        let code = field(0);
        check_code(code)?;
        let display = field(1);
        if display.is_empty() {
            return Err(format!("display of code {code} is empty"));
        }
        if display.chars().any(char::is_control) {
            return Err(format!("display of code {code} holds a control character"));
        }
        let branch = field(2).to_ascii_lowercase();
        if !is_branch(&branch) {
            let known: Vec<&str> = branches().iter().map(|b| b.code.as_str()).collect();
            return Err(format!("branch {:?} is unknown; the branches are {}", field(2), known.join(", ")));
        }
        let kind = Kind::from_code(&field(3).to_ascii_lowercase())
            .ok_or_else(|| format!("kind {:?} must be visit or exam", field(3)))?;
        let access = AccessKind::from_code(&field(4).to_ascii_lowercase())
            .ok_or_else(|| format!("access {:?} must be first or follow-up", field(4)))?;
        let tariff = parse_tariff(field(5))?;
        let valid_from = parse_date(field(6))?;
        let national = self.national(r)?;
        let preparation = parse_preparation(code, self.preparation.and_then(|i| r.get(i)).unwrap_or(""))?;
        Ok(CatalogEntry {
            code: code.to_string(),
            display: display.to_string(),
            branch,
            kind,
            access,
            tariff,
            valid_from,
            national,
            preparation,
            line,
        })
    }

    /// The optional `national` column: `yes` when absent or empty.
    fn national(&self, r: &::csv::StringRecord) -> Result<bool, String> {
        match self.national.and_then(|i| r.get(i)).map(str::to_ascii_lowercase) {
            None => Ok(true),
            Some(v) if v.is_empty() || v == "yes" => Ok(true),
            Some(v) if v == "no" => Ok(false),
            Some(v) => Err(format!("national {v:?} must be yes or no")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "code,display,branch,kind,access,tariff,valid_from,national";

    fn file(rows: &[&str]) -> String {
        let mut s = String::from(HEADER);
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s
    }

    const GOOD: [&str; 4] = [
        "89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01,yes",
        "89.7A.3,Prima visita cardiologica,cardiology,visit,first,20.66,2024-01-01,yes",
        "89.01.C,Visita neurologica di controllo,neurology,visit,follow-up,12.91,2024-01-01,yes",
        "R.CARD.01,\"Visita cardiologica con ECG, pacchetto regionale\",cardiology,visit,first,32.28,2024-01-01,no",
    ];

    /// The one error of a file whose rows are GOOD with `bad` at line `GOOD.len() + 2`.
    fn only_error(bad: &str) -> RowError {
        let mut rows = GOOD.to_vec();
        rows.push(bad);
        let errors = parse_csv(&file(&rows)).expect_err("a bad row");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().expect("one error")
    }

    #[test]
    fn a_good_file_parses() {
        let entries = parse_csv(&file(&GOOD)).expect("parses");
        assert_eq!(entries.len(), 4);
        let ecg = &entries[0];
        assert_eq!(ecg.code, "89.52");
        assert_eq!(ecg.tariff.to_string(), "11.62");
        assert_eq!((ecg.kind, ecg.access, ecg.national, ecg.line), (Kind::Exam, AccessKind::First, true, 2));
        assert_eq!(entries[2].access, AccessKind::FollowUp);
        assert_eq!(entries[3].display, "Visita cardiologica con ECG, pacchetto regionale");
        assert!(!entries[3].national);
    }

    #[test]
    fn columns_in_any_order_national_optional_bom_and_case_tolerated() {
        let text = "\u{feff}valid_from,tariff,code,Display,branch,kind,access\n2024-01-01,20,89.13,Prima visita neurologica,Neurology,VISIT,first\n";
        let e = parse_csv(text).expect("parses");
        assert_eq!(e[0].code, "89.13");
        assert_eq!(e[0].tariff.to_string(), "20.00", "kept with 2 decimals");
        assert_eq!(e[0].branch, "neurology");
        assert!(e[0].national, "national defaults to yes");
    }

    #[test]
    fn each_bad_input_names_its_line_and_reason() {
        let line = GOOD.len() + 2;
        let cases = [
            ("89..52,ECG,cardiology,exam,first,11.62,2024-01-01,yes", "malformed"),
            (".89,ECG,cardiology,exam,first,11.62,2024-01-01,yes", "malformed"),
            ("89.52/1,ECG,cardiology,exam,first,11.62,2024-01-01,yes", "malformed"),
            ("123456789012345678901,ECG,cardiology,exam,first,11.62,2024-01-01,yes", "malformed"),
            ("89.53,ECG,cardiology,exam,first,-3.00,2024-01-01,yes", "negative"),
            ("89.53,ECG,cardiology,exam,first,abc,2024-01-01,yes", "not a number"),
            ("89.53,ECG,cardiology,exam,first,\"11,62\",2024-01-01,yes", "decimal separator"),
            ("89.53,ECG,cardiology,exam,first,11.625,2024-01-01,yes", "3 decimals"),
            ("89.53,ECG,astrology,exam,first,11.62,2024-01-01,yes", "branch \"astrology\" is unknown"),
            ("89.53,ECG,cardiology,test,first,11.62,2024-01-01,yes", "kind \"test\" must be visit or exam"),
            ("89.53,ECG,cardiology,exam,second,11.62,2024-01-01,yes", "access \"second\""),
            ("89.53,ECG,cardiology,exam,first,11.62,2024-02-30,yes", "not a day of the calendar"),
            ("89.53,ECG,cardiology,exam,first,11.62,01/02/2024,yes", "not a date"),
            ("89.53,ECG,cardiology,exam,first,11.62,2024-01-01,maybe", "national \"maybe\""),
            ("89.53,,cardiology,exam,first,11.62,2024-01-01,yes", "display of code 89.53 is empty"),
            ("89.53,ECG,cardiology,exam,first,11.62", "6 fields"),
            ("89.52,Elettrocardiogramma,cardiology,exam,first,12.00,2024-01-01,yes", "already on line 2"),
            ("89.52,Elettrocardiogramma,radiology,exam,first,12.00,2026-01-01,yes", "branch \"radiology\" here"),
        ];
        for (row, reason) in cases {
            let e = only_error(row);
            assert_eq!(e.line, line, "{row}: {e}");
            assert!(e.reason.contains(reason), "{row}: {e}");
        }
    }

    #[test]
    fn the_optional_preparation_is_kept_checked_and_the_same_on_every_row() {
        let head = format!("{HEADER},preparation\n");
        let ok = "89.52,ECG,cardiology,exam,first,11.62,2024-01-01,yes,\"Digiuno da 8 ore, acqua consentita\"\n";
        let e =
            parse_csv(&format!("{head}{ok}89.13,Visita,neurology,visit,first,20,2024-01-01,yes,\n")).expect("parses");
        assert_eq!(e[0].preparation.as_deref(), Some("Digiuno da 8 ore, acqua consentita"));
        assert_eq!(e[1].preparation, None, "empty is none");
        assert_eq!(parse_csv(&file(&GOOD[..1])).expect("parses")[0].preparation, None, "no column, none");
        let long = "x".repeat(501);
        for (row, reason) in [
            (format!("89.53,ECG,cardiology,exam,first,1,2024-01-01,yes,{long}"), "preparation of code 89.53 has 501"),
            ("89.53,ECG,cardiology,exam,first,1,2024-01-01,yes,\"a\tb\"".into(), "control character"),
            ("89.52,ECG,cardiology,exam,first,1,2025-01-01,yes,Altro".into(), "has preparation \"Altro\" here"),
        ] {
            let errors = parse_csv(&format!("{head}{ok}{row}\n")).expect_err("a bad row");
            assert_eq!((errors.len(), errors[0].line), (1, 3), "{row}: {errors:?}");
            assert!(errors[0].reason.contains(reason), "{row}: {}", errors[0]);
        }
    }

    #[test]
    fn a_missing_or_unknown_column_is_an_error_on_line_1() {
        let e = parse_csv("code,display,branch,kind,access,valid_from\n89.52,ECG,cardiology,exam,first,2024-01-01\n")
            .expect_err("no tariff column");
        assert_eq!((e.len(), e[0].line), (1, 1));
        assert!(e[0].reason.contains("missing column tariff"), "{}", e[0]);
        let e = parse_csv(&format!("{HEADER},tarif\n")).expect_err("unknown column");
        assert!(e[0].reason.contains("unknown column \"tarif\""), "{}", e[0]);
        assert_eq!(parse_csv("").expect_err("empty")[0].line, 1);
    }

    #[test]
    fn every_bad_row_is_reported_up_to_20() {
        let bad: Vec<String> = (0..30).map(|i| format!("89.{i},ECG,cardiology,exam,first,-1,2024-01-01,yes")).collect();
        let rows: Vec<&str> = bad.iter().map(String::as_str).collect();
        let errors = parse_csv(&file(&rows)).expect_err("bad rows");
        assert_eq!(errors.len(), 20);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), (2..22).collect::<Vec<_>>());
    }

    #[test]
    fn a_large_file_parses_with_progress() {
        let rows: Vec<String> = (0..2500)
            .map(|i| {
                format!(
                    "R.{i},Prestazione regionale {i},laboratory,exam,first,{}.{:02},2024-01-01,no",
                    i / 100,
                    i % 100
                )
            })
            .collect();
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let entries = parse_csv(&file(&refs)).expect("parses");
        assert_eq!(entries.len(), 2500);
        assert_eq!((entries[2499].line, entries[2499].tariff.to_string().as_str()), (2501, "24.99"));
    }
}
