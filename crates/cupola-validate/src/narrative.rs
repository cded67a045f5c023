//! Narrative XHTML (`Narrative.div`, type `xhtml`) against R4's rules: txt-1
//! (only the basic HTML 4 formatting elements and their attributes, links,
//! images and inline styles: no scripts, event handlers, frames, forms or
//! objects) and txt-2 (some non-whitespace content). A console or a portal
//! that shows narrative would otherwise run what a client put there.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// The elements of HTML 4's chapters 7-11 and 15 that FHIR allows, with `a`, `img` and `map`.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "s",
    "strike",
    "center",
    "font",
];

/// Their attributes (core, i18n, links, images, tables, lists); no `on*` handler among them.
const ATTRIBUTES: &[&str] = &[
    "abbr",
    "accesskey",
    "align",
    "alt",
    "axis",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "char",
    "charoff",
    "charset",
    "cite",
    "class",
    "color",
    "colspan",
    "compact",
    "coords",
    "datetime",
    "dir",
    "face",
    "frame",
    "headers",
    "height",
    "href",
    "hreflang",
    "hspace",
    "id",
    "lang",
    "longdesc",
    "name",
    "nohref",
    "noshade",
    "nowrap",
    "rel",
    "rev",
    "rowspan",
    "rules",
    "scope",
    "shape",
    "size",
    "span",
    "src",
    "start",
    "style",
    "summary",
    "tabindex",
    "title",
    "type",
    "usemap",
    "valign",
    "value",
    "vspace",
    "width",
    "xml:lang",
    "xmlns",
];

/// Checks one narrative; `Err` says what is refused, in a sentence. `Ok(false)`:
/// allowed, but with no content (txt-2), which is a warning only, as some
/// official R4 examples carry an empty `<div>`.
pub(crate) fn check(div: &str) -> Result<bool, String> {
    let mut reader = Reader::from_str(div);
    reader.check_end_names(true);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut content = false;
    loop {
        let event = reader.read_event().map_err(|e| format!("it is not well-formed XHTML ({e})"))?;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if depth == 0 {
                    roots += 1;
                    root(s, roots)?;
                }
                element(s)?;
                content |= s.name().as_ref() == b"img";
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(ref t) => {
                let blank = t.iter().all(u8::is_ascii_whitespace);
                if depth == 0 && !blank {
                    return Err("it has text outside its <div>".into());
                }
                content |= !blank;
            }
            Event::CData(ref t) => content |= !t.iter().all(u8::is_ascii_whitespace),
            Event::DocType(_) | Event::PI(_) => {
                return Err("it has a DOCTYPE or a processing instruction, which narrative may not carry".into())
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots == 0 || depth != 0 {
        return Err("it is not one complete <div> element".into());
    }
    Ok(content)
}

fn root(s: &BytesStart, roots: usize) -> Result<(), String> {
    if roots > 1 || s.name().as_ref() != b"div" {
        return Err("it must be a single <div> element".into());
    }
    let ns = s.attributes().flatten().find(|a| a.key.as_ref() == b"xmlns");
    match ns {
        Some(a) if a.value.as_ref() == XHTML_NS.as_bytes() => Ok(()),
        _ => Err(format!("its <div> must declare xmlns=\"{XHTML_NS}\"")),
    }
}

fn element(s: &BytesStart) -> Result<(), String> {
    let name = String::from_utf8_lossy(s.name().as_ref()).to_string();
    if !ELEMENTS.contains(&name.as_str()) {
        return Err(format!(
            "<{name}> is not allowed in narrative: only HTML 4's basic formatting elements, links and images are (txt-1; no scripts, frames, forms or objects)"
        ));
    }
    for attr in s.attributes() {
        let attr = attr.map_err(|e| format!("it has a malformed attribute in <{name}> ({e})"))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).to_string();
        if !ATTRIBUTES.contains(&key.as_str()) {
            return Err(format!(
                "the attribute '{key}' of <{name}> is not allowed in narrative (txt-1; no event handlers such as onclick)"
            ));
        }
        let value =
            attr.unescape_value().map_err(|e| format!("the attribute '{key}' of <{name}> is malformed ({e})"))?;
        attribute_value(&name, &key, &value)?;
    }
    Ok(())
}

/// Links, images and styles may not run anything: no `javascript:` or `vbscript:`
/// URL, no `data:` URL but an image's, no style expression.
fn attribute_value(element: &str, key: &str, value: &str) -> Result<(), String> {
    if key == "xmlns" && value != XHTML_NS {
        return Err(format!("<{element}> declares another namespace than XHTML ({value})"));
    }
    // Browsers ignore control characters and blanks inside a scheme ("java\tscript:").
    let squeezed: String =
        value.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect::<String>().to_ascii_lowercase();
    let active = squeezed.contains("javascript:")
        || squeezed.contains("vbscript:")
        || (key == "style" && (squeezed.contains("expression(") || squeezed.contains("url(")))
        || (squeezed.starts_with("data:") && !(key == "src" && squeezed.starts_with("data:image/")));
    if active {
        return Err(format!("the attribute '{key}' of <{element}> holds active content ({value:.60}), which narrative may not carry (txt-1)"));
    }
    Ok(())
}
