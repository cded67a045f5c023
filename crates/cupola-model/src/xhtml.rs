//! Narrative `<div>` handling around fhirbolt.
//!
//! fhirbolt's XML reader and writer trim whitespace text inside the XHTML
//! narrative and drop attributes of the root `<div>`, so a narrative would not
//! survive json→xml→json unchanged. We therefore swap every narrative for a
//! numbered placeholder before fhirbolt sees it and put the original markup
//! back afterwards. The same pass over fhirbolt's XML output also removes the
//! indentation for compact output and escapes line breaks in attribute values
//! (fhirbolt writes them raw; XML readers would fold them into spaces).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Namespace of the narrative `<div>`.
pub(crate) const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Opening tag of the placeholder `<div>` (and of fhirbolt's rebuilt divs).
fn placeholder_open() -> String {
    format!("<div xmlns=\"{XHTML_NS}\">")
}

/// A placeholder narrative carrying `marker` followed by the index `idx`.
pub(crate) fn placeholder(marker: &str, idx: usize) -> String {
    format!("{}{marker}{idx}</div>", placeholder_open())
}

/// Reads back the index of a placeholder made by [`placeholder`].
pub(crate) fn placeholder_index(div: &str, marker: &str) -> Option<usize> {
    div.strip_prefix(&placeholder_open())?.strip_suffix("</div>")?.trim().strip_prefix(marker)?.parse().ok()
}

fn xml_err(e: quick_xml::Error) -> String {
    format!("invalid XML: {e}")
}

fn has_xhtml_default_ns(start: &BytesStart) -> Result<bool, String> {
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("invalid XML attribute: {e}"))?;
        if attr.key.as_ref() == b"xmlns" {
            return Ok(attr.value.as_ref() == XHTML_NS.as_bytes());
        }
    }
    Ok(false)
}

/// Checks that a JSON narrative is one well-formed `<div>` element and returns
/// the markup to splice into XML output. A root `<div>` without a namespace
/// declaration gets the XHTML one, otherwise it would land in the FHIR namespace.
pub(crate) fn checked_div(div: &str) -> Result<String, String> {
    let mut reader = Reader::from_str(div);
    reader.check_end_names(true);
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut needs_ns = false;
    loop {
        let event = reader.read_event().map_err(|e| format!("narrative div is not well-formed XHTML: {e}"))?;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if depth == 0 {
                    if root_seen || s.name().as_ref() != b"div" {
                        return Err("narrative must be a single <div> element".into());
                    }
                    root_seen = true;
                    needs_ns = !s.attributes().any(|a| a.map(|a| a.key.as_ref() == b"xmlns").unwrap_or(false));
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err("text outside the narrative <div>".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || depth != 0 {
        return Err("narrative div is not a complete <div> element".into());
    }
    let trimmed = div.trim();
    if needs_ns {
        // `<div` is the first thing in `trimmed`: the reader accepted it as root.
        let rest = trimmed.get(4..).unwrap_or_default();
        Ok(format!("<div xmlns=\"{XHTML_NS}\"{rest}"))
    } else {
        Ok(trimmed.to_string())
    }
}

/// Post-processes fhirbolt's XML output: puts the narratives back in place of
/// the placeholders, escapes line breaks and tabs inside attribute values, and
/// drops indentation when `pretty` is false.
pub(crate) fn finish_xml(raw: &str, divs: &[String], pretty: bool) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + divs.iter().map(String::len).sum::<usize>());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let rest = &raw[i..];
            if rest.starts_with("<div ") || rest.starts_with("<div>") {
                // fhirbolt escapes '<' in attribute values, so a raw "<div" is
                // always one of our placeholder narratives.
                let open_end = rest.find('>').ok_or("unterminated div in output")?;
                let close = rest.find("</div>").ok_or("unterminated div in output")?;
                let inner = rest.get(open_end + 1..close).unwrap_or_default().trim();
                let idx: usize = inner.parse().map_err(|_| "unexpected div in fhirbolt output".to_string())?;
                out.push_str(divs.get(idx).ok_or("unknown narrative placeholder")?);
                i += close + "</div>".len();
                continue;
            }
            // Copy one tag; quotes delimit attribute values (fhirbolt escapes
            // '"' and '>' inside them).
            let mut in_value = false;
            let start = i;
            let mut seg = start;
            while i < bytes.len() {
                let b = bytes[i];
                if in_value && matches!(b, b'\n' | b'\r' | b'\t') {
                    out.push_str(&raw[seg..i]);
                    out.push_str(match b {
                        b'\n' => "&#10;",
                        b'\r' => "&#13;",
                        _ => "&#9;",
                    });
                    seg = i + 1;
                } else if b == b'"' {
                    in_value = !in_value;
                } else if b == b'>' && !in_value {
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push_str(&raw[seg..i]);
        } else {
            let end = raw[i..].find('<').map(|p| i + p).unwrap_or(bytes.len());
            let text = &raw[i..end];
            // Outside narratives FHIR XML has no text content: this is only
            // the writer's indentation.
            if pretty || !text.trim().is_empty() {
                out.push_str(text);
            }
            i = end;
        }
    }
    Ok(out)
}

/// Result of taking the narratives out of an XML document.
pub(crate) struct XmlDivs {
    /// The document with every narrative replaced by a placeholder.
    pub xml: String,
    /// The original narratives, by placeholder index.
    pub divs: Vec<String>,
    /// Text in the placeholders that does not occur in the input.
    pub marker: String,
}

/// Checks that `xml` is well-formed and replaces each narrative `<div>` that
/// declares the XHTML namespace itself with a placeholder, keeping its markup
/// byte for byte. Other divs are left to fhirbolt.
pub(crate) fn extract_divs(xml: &str) -> Result<XmlDivs, String> {
    let mut marker = String::from("cupola-div-");
    while xml.contains(&marker) {
        marker.push('x');
    }
    let mut reader = Reader::from_str(xml);
    reader.check_end_names(true);
    let mut walk = DivWalk {
        xml,
        marker,
        out: String::with_capacity(xml.len()),
        divs: Vec::new(),
        copied: 0,
        depth: 0,
        roots: 0,
        open_div: None,
    };
    loop {
        let before = reader.buffer_position();
        let event = reader.read_event().map_err(xml_err)?;
        let after = reader.buffer_position();
        if matches!(event, Event::Eof) {
            break;
        }
        walk.event(&event, before, after)?;
    }
    if walk.depth != 0 {
        return Err("invalid XML: unexpected end of document (unclosed element)".into());
    }
    if walk.roots == 0 {
        return Err("invalid XML: no root element".into());
    }
    walk.out.push_str(xml.get(walk.copied..).unwrap_or_default());
    Ok(XmlDivs { xml: walk.out, divs: walk.divs, marker: walk.marker })
}

/// [`extract_divs`]'s pass over the document: what it has copied and taken out so far.
struct DivWalk<'x> {
    xml: &'x str,
    marker: String,
    out: String,
    divs: Vec<String>,
    /// How far `xml` has been copied (or replaced) into `out`.
    copied: usize,
    depth: usize,
    roots: usize,
    /// (depth of the div element, byte offset of its '<')
    open_div: Option<(usize, usize)>,
}

impl DivWalk<'_> {
    /// One event of the reader, read from byte `before` to byte `after`.
    fn event(&mut self, event: &Event, before: usize, after: usize) -> Result<(), String> {
        match event {
            Event::Start(s) | Event::Empty(s) => {
                if self.depth == 0 {
                    self.roots += 1;
                    if self.roots > 1 {
                        return Err("invalid XML: more than one root element".into());
                    }
                }
                let is_start = matches!(event, Event::Start(_));
                if self.open_div.is_none() && s.name().as_ref() == b"div" && has_xhtml_default_ns(s)? {
                    let lt = tag_start(self.xml, before);
                    if is_start {
                        self.open_div = Some((self.depth, lt));
                    } else {
                        self.take(lt, after);
                    }
                }
                if is_start {
                    self.depth += 1;
                }
            }
            Event::End(_) => {
                self.depth = self.depth.checked_sub(1).ok_or("invalid XML: unexpected end tag")?;
                if let Some((d, lt)) = self.open_div {
                    if d == self.depth {
                        self.take(lt, after);
                        self.open_div = None;
                    }
                }
            }
            Event::Text(t) if self.depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err("invalid XML: text outside the root element".into());
            }
            _ => {}
        }
        Ok(())
    }

    /// The div from `lt` to `after` out of the document, a placeholder in its place.
    fn take(&mut self, lt: usize, after: usize) {
        take_div(self.xml, lt, after, &self.marker, &mut self.out, &mut self.divs, &mut self.copied);
    }
}

/// Offset of the '<' that opens the tag read from `pos` on: after a text event
/// quick-xml has already consumed that '<'.
fn tag_start(xml: &str, pos: usize) -> usize {
    let b = xml.as_bytes();
    if b.get(pos) != Some(&b'<') && pos > 0 && b.get(pos - 1) == Some(&b'<') {
        pos - 1
    } else {
        pos
    }
}

fn take_div(
    xml: &str,
    start: usize,
    end: usize,
    marker: &str,
    out: &mut String,
    divs: &mut Vec<String>,
    copied: &mut usize,
) {
    out.push_str(xml.get(*copied..start).unwrap_or_default());
    out.push_str(&placeholder(marker, divs.len()));
    // XML line-end normalisation, as any XML reader would do for this text.
    divs.push(xml.get(start..end).unwrap_or_default().replace("\r\n", "\n"));
    *copied = end;
}
