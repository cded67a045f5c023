//! How a stored JSON text is kept: a zstd frame compressed with a dictionary trained
//! on the region's own resources and messages (`body-1.dict`, see docs/operations.md
//! "Stored bodies"). A resource's text is 0.5-2 KB, under PostgreSQL's TOAST
//! threshold, so the server never compresses it; alone, zstd halves such a text, with
//! the dictionary it keeps a fifth to a third. HAPI FHIR keeps its resources
//! compressed for the same reason (`JSONC`).
//!
//! Texts written before (plain JSON, starting with `{`) stay readable as they are;
//! a frame names its dictionary, so a later dictionary is added beside this one and
//! this one is never changed or dropped.

use std::cell::RefCell;
use std::sync::LazyLock;

use sqlx::any::AnyRow;
use sqlx::Row;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::{Error, Result};

/// The dictionaries, the one new texts are compressed with first. Never edit or
/// remove one: stored frames name it.
const DICTIONARIES: [&[u8]; 1] = [include_bytes!("body-1.dict")];

/// zstd's level: 3 (its default) compresses a resource in a few microseconds.
const LEVEL: i32 = 3;

/// A zstd frame's first four bytes.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Frames larger than this when decompressed are refused (a damaged header): far
/// above any request the gateway takes (`--max-body-bytes`, 10 MiB by default), so
/// that no body it stored is ever refused.
const LARGEST: u64 = 1 << 30;

static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARIES[0], LEVEL));
static DECODERS: LazyLock<Vec<(u32, DecoderDictionary<'static>)>> = LazyLock::new(|| {
    DICTIONARIES
        .iter()
        .map(|d| (zstd::zstd_safe::get_dict_id_from_dict(d).map_or(0, |id| id.get()), DecoderDictionary::copy(d)))
        .collect()
});

// A zstd context is some 100 KB to set up: each thread keeps one of each (a fresh
// decompressor per read cost the gateway 30 µs of CPU per read).
thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSORS: RefCell<Vec<(u32, Decompressor<'static>)>> = const { RefCell::new(Vec::new()) };
}

/// `json` as it is stored: compressed, or as it is when compressing fails or does not
/// make it smaller.
pub fn pack(json: &str) -> Vec<u8> {
    let compressed = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Compressor::with_prepared_dictionary(&ENCODER).ok();
        }
        c.as_mut().and_then(|c| c.compress(json.as_bytes()).ok())
    });
    match compressed {
        Some(z) if z.len() < json.len() => z,
        _ => json.as_bytes().to_vec(),
    }
}

/// The JSON text of a stored body; an error says why it cannot be read (a damaged
/// frame, an unknown dictionary, text that is not UTF-8).
pub fn unpack(stored: Vec<u8>) -> std::result::Result<String, String> {
    if !stored.starts_with(&MAGIC) {
        return String::from_utf8(stored).map_err(|e| format!("the stored text is not UTF-8: {e}"));
    }
    let id = zstd::zstd_safe::get_dict_id_from_frame(&stored).map_or(0, |id| id.get());
    let size = match zstd::zstd_safe::get_frame_content_size(&stored) {
        Ok(Some(n)) if n <= LARGEST => n as usize,
        _ => return Err("the stored frame's size is missing or damaged".into()),
    };
    let bytes = DECOMPRESSORS.with(|ds| {
        let mut ds = ds.borrow_mut();
        let at = match ds.iter().position(|(d, _)| *d == id) {
            Some(at) => at,
            None => {
                let Some((_, dict)) = DECODERS.iter().find(|(d, _)| *d == id) else {
                    return Err(format!("the stored text names dictionary {id}, which this gateway does not have"));
                };
                ds.push((id, Decompressor::with_prepared_dictionary(dict).map_err(|e| e.to_string())?));
                ds.len() - 1
            }
        };
        ds[at].1.decompress(&stored, size).map_err(|e| format!("the stored frame is damaged: {e}"))
    })?;
    String::from_utf8(bytes).map_err(|e| format!("the stored text is not UTF-8: {e}"))
}

/// The JSON text in column `col` of `row` (`None` for NULL: a deletion, a slot of
/// the grid). Bytes are [`unpack`]ed; text (an SQLite row written before) is as it is.
/// A body that cannot be read is an error of the store: the request answers 500.
pub fn column<I: sqlx::ColumnIndex<AnyRow> + std::fmt::Display + Copy>(row: &AnyRow, col: I) -> Result<Option<String>> {
    let stored = match row.try_get::<Option<Vec<u8>>, _>(col) {
        Ok(b) => b,
        Err(_) => row.try_get::<Option<String>, _>(col)?.map(String::into_bytes),
    };
    stored.map(unpack).transpose().map_err(|why| {
        tracing::error!(column = %col, error = %why, "a stored body cannot be read");
        Error::Internal(anyhow::anyhow!("a stored body cannot be read: {why}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_comes_back_as_it_went_in_and_smaller() {
        let json = r#"{"resourceType":"Appointment","id":"a1","meta":{"versionId":"1","lastUpdated":"2026-12-08T10:00:00Z"},"status":"booked","serviceType":[{"coding":[{"system":"http://cupola.example/fhir/CodeSystem/nomenclatore","code":"89.7"}]}],"participant":[{"actor":{"reference":"Patient/p1"},"status":"accepted"}]}"#;
        let packed = pack(json);
        assert!(packed.starts_with(&MAGIC) && packed.len() < json.len() / 2, "{} of {}", packed.len(), json.len());
        assert_eq!(unpack(packed).as_deref(), Ok(json));
    }

    #[test]
    fn plain_text_written_before_reads_as_it_is() {
        assert_eq!(unpack(b"{\"a\":1}".to_vec()).as_deref(), Ok("{\"a\":1}"));
    }

    #[test]
    fn a_damaged_frame_is_an_error_not_a_panic() {
        let mut packed = pack(r#"{"resourceType":"Patient","name":[{"family":"Rossi"}]}"#);
        let n = packed.len();
        packed.truncate(n - 3);
        assert!(unpack(packed).is_err());
        assert!(unpack([MAGIC.as_slice(), &[0xFF; 8]].concat()).is_err());
    }
}
