//! Tests for the fhirbolt wrapper: official examples, Bundles, errors.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cupola_model::{check_typed, check_typed_after_schema, json_to_xml, xml_to_json, XmlOptions};
use serde_json::{json, Value};

const PRETTY: XmlOptions = XmlOptions { pretty: true };
const COMPACT: XmlOptions = XmlOptions { pretty: false };

fn examples() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read example");
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("example is JSON"))
        })
        .collect()
}

fn round_trip(v: &Value, opts: XmlOptions) -> Value {
    let xml = json_to_xml(v, opts).expect("json_to_xml");
    xml_to_json(&xml).expect("xml_to_json")
}

#[test]
fn every_official_example_checks_and_round_trips() {
    let examples = examples();
    assert!(examples.len() > 100, "examples missing");
    let mut failures = Vec::new();
    let (mut check_time, mut to_xml_time, mut from_xml_time) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for (name, v) in &examples {
        let t = Instant::now();
        if let Err(e) = check_typed(v) {
            failures.push(format!("{name}: check_typed: {e}"));
            continue;
        }
        check_time += t.elapsed();
        for opts in [PRETTY, COMPACT] {
            let t = Instant::now();
            let xml = match json_to_xml(v, opts) {
                Ok(x) => x,
                Err(e) => {
                    failures.push(format!("{name}: json_to_xml: {e}"));
                    continue;
                }
            };
            to_xml_time += t.elapsed();
            let t = Instant::now();
            match xml_to_json(&xml) {
                Ok(back) if &back == v => {}
                Ok(_) => failures.push(format!("{name}: round trip differs (pretty={})", opts.pretty)),
                Err(e) => failures.push(format!("{name}: xml_to_json: {e}")),
            }
            from_xml_time += t.elapsed();
        }
    }
    let n = examples.len() as u32;
    println!(
        "{n} examples; mean per call: check_typed {:?}, json_to_xml {:?}, xml_to_json {:?}",
        check_time / n,
        to_xml_time / (2 * n),
        from_xml_time / (2 * n)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bundle_examples_are_present_and_round_trip() {
    let bundles: Vec<_> = examples().into_iter().filter(|(_, v)| v["resourceType"] == "Bundle").collect();
    let types: Vec<&str> = bundles.iter().filter_map(|(_, v)| v["type"].as_str()).collect();
    for t in ["transaction", "transaction-response", "searchset", "message"] {
        assert!(types.contains(&t), "no {t} Bundle among the examples: {types:?}");
    }
    for (name, v) in &bundles {
        assert_eq!(&round_trip(v, COMPACT), v, "{name}");
    }
}

#[test]
fn decimals_keep_their_text() {
    let obs: Value = serde_json::from_str(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},
            "valueQuantity":{"value":20.00,"unit":"kg"},
            "referenceRange":[{"low":{"value":1.50},"high":{"value":100}}]}"#,
    )
    .expect("json");
    let xml = json_to_xml(&obs, COMPACT).expect("to xml");
    assert!(xml.contains(r#"<value value="20.00"/>"#), "{xml}");
    assert!(xml.contains(r#"<value value="1.50"/>"#), "{xml}");
    let back = xml_to_json(&xml).expect("from xml");
    assert_eq!(back, obs);
    assert_eq!(back["valueQuantity"]["value"].to_string(), "20.00");
}

#[test]
fn transaction_bundle_with_request_after_resource() {
    // The shape that trips fhirbolt's direct typed parse.
    let b = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:1",
            "resource": {"resourceType": "Patient", "active": true,
                          "contained": [{"resourceType": "Organization", "id": "o", "name": "X"}],
                          "managingOrganization": {"reference": "#o"}},
            "request": {"method": "POST", "url": "Patient"}
        }, {
            "request": {"method": "DELETE", "url": "Patient/2"}
        }]
    });
    check_typed(&b).expect("valid");
    let xml = json_to_xml(&b, PRETTY).expect("to xml");
    assert!(xml.contains(r#"<method value="POST"/>"#), "{xml}");
    assert_eq!(xml_to_json(&xml).expect("from xml"), b);
}

#[test]
fn searchset_bundle_with_three_entries() {
    let entries: Vec<Value> = (1..=3)
        .map(|i| {
            json!({
                "fullUrl": format!("http://example.org/fhir/Patient/{i}"),
                "resource": {"resourceType": "Patient", "id": i.to_string(),
                              "name": [{"family": format!("Rossi{i}")}]},
                "search": {"mode": "match", "score": 1}
            })
        })
        .collect();
    let b = json!({"resourceType": "Bundle", "type": "searchset", "total": 3,
                   "link": [{"relation": "self", "url": "http://example.org/fhir/Patient"}],
                   "entry": entries});
    check_typed(&b).expect("valid");
    let xml = json_to_xml(&b, PRETTY).expect("to xml");
    assert_eq!(xml.matches("<entry>").count(), 3, "{xml}");
    // Spec order inside an entry: fullUrl, resource, search.
    let (f, r, s) = (
        xml.find("<fullUrl").expect("fullUrl"),
        xml.find("<resource>").expect("resource"),
        xml.find("<search>").expect("search"),
    );
    assert!(f < r && r < s, "{xml}");
    assert!(xml.find("<type").expect("type") < xml.find("<total").expect("total"));
    assert_eq!(xml_to_json(&xml).expect("from xml"), b);
}

#[test]
fn check_typed_names_unknown_element() {
    let p = json!({"resourceType": "Patient", "active": true, "colour": "blue"});
    let e = check_typed(&p).expect_err("unknown element");
    assert!(e.contains("colour"), "{e}");

    let nested = json!({"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": {"resourceType": "Patient", "bogus": 1}}]});
    let e = check_typed(&nested).expect_err("unknown nested element");
    assert!(e.contains("bogus") && e.contains("entry[0]"), "{e}");

    let p = json!({"resourceType": "Patient", "name": {"family": "Rossi"}});
    let e = check_typed(&p).expect_err("lone value for an array");
    assert!(e.contains("Patient.name"), "{e}");
}

#[test]
fn check_typed_names_wrongly_typed_element() {
    let p = json!({"resourceType": "Patient", "active": "yes"});
    let e = check_typed(&p).expect_err("wrong type");
    assert!(e.contains("Patient.active"), "{e}");

    let p = json!({"resourceType": "Patient", "name": [{"family": 42}]});
    let e = check_typed(&p).expect_err("wrong type");
    assert!(e.contains("Patient.name[0].family"), "{e}");

    let p = json!({"resourceType": "Patient", "gender": ["male"]});
    let e = check_typed(&p).expect_err("array for a single value");
    assert!(e.contains("gender"), "{e}");
}

#[test]
fn check_typed_rejects_non_resources() {
    assert!(check_typed(&json!([1, 2])).is_err());
    assert!(check_typed(&json!({"resourceType": "NoSuchThing"})).is_err());
    assert!(check_typed(&json!({"active": true})).is_err());
}

#[test]
fn narrative_is_kept_exactly() {
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"it\">\n  <p>Mario <b>Rossi</b> &amp; co</p>\n</div>";
    let p = json!({"resourceType": "Patient", "text": {"status": "generated", "div": div},
                   "name": [{"text": "line one\nline two\ttab"}]});
    for opts in [PRETTY, COMPACT] {
        let xml = json_to_xml(&p, opts).expect("to xml");
        assert!(xml.contains(div), "{xml}");
        // Line breaks in attribute values are escaped, not written raw.
        assert!(xml.contains("line one&#10;line two&#9;tab"), "{xml}");
        assert_eq!(xml_to_json(&xml).expect("from xml"), p);
    }
    let compact = json_to_xml(&p, COMPACT).expect("to xml");
    assert!(!compact.replace(div, "").contains('\n'), "{compact}");
}

#[test]
fn narrative_without_namespace_gets_it_and_bad_markup_is_refused() {
    let p = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>hi</div>"}});
    let xml = json_to_xml(&p, COMPACT).expect("to xml");
    assert!(xml.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml">hi</div>"#), "{xml}");

    for bad in ["<div><p>open</div>", "no markup", "<p>x</p>", "<div>a</div><div>b</div>"] {
        let p = json!({"resourceType": "Patient", "text": {"status": "generated", "div": bad}});
        assert!(json_to_xml(&p, PRETTY).is_err(), "{bad}");
    }
}

#[test]
fn xml_input_written_by_hand() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<Bundle xmlns="http://hl7.org/fhir">
  <type value="batch"/>
  <entry>
    <resource>
      <Patient>
        <id value="p1"/>
        <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>A  B</p></div></text>
        <birthDate value="1970-01-01"/>
      </Patient>
    </resource>
    <request><method value="PUT"/><url value="Patient/p1"/></request>
  </entry>
  <entry>
    <request><method value="GET"/><url value="Patient?name=x"/></request>
  </entry>
</Bundle>"#;
    let v = xml_to_json(xml).expect("from xml");
    assert_eq!(
        v["entry"][0]["resource"]["text"]["div"],
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>A  B</p></div>"#
    );
    assert_eq!(v["entry"][0]["request"]["method"], "PUT");
    assert_eq!(v["entry"][1]["request"]["url"], "Patient?name=x");
    check_typed(&v).expect("valid");
}

#[test]
fn xml_to_json_rejects_malformed_xml() {
    let bad = [
        "",
        "   ",
        "not xml",
        "<Patient xmlns=\"http://hl7.org/fhir\">",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\">text</Patient>",
        "<Patient><active value=\"true\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><colour value=\"x\"/></Patient>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"maybe\"/></Patient>",
        "<Nope xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><text><div xmlns=\"http://www.w3.org/1999/xhtml\"><p></div></text></Patient>",
        "<?xml version=\"1.1\"?><Patient xmlns=\"http://hl7.org/fhir\"/>",
        "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"&bogus;\"/></Patient>",
    ];
    for x in bad {
        assert!(xml_to_json(x).is_err(), "accepted: {x}");
    }
}

#[test]
#[ignore = "prints sample messages"]
fn print_messages() {
    for v in [
        json!({"resourceType": "Patient", "colour": "blue"}),
        json!({"resourceType": "Patient", "active": "yes"}),
        json!({"resourceType": "Patient", "gender": ["male"]}),
        json!({"resourceType": "Observation", "code": {"text": "x"}}),
        json!({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Patient", "birthDate": 1970}}]}),
    ] {
        println!("{}", check_typed(&v).expect_err("invalid"));
    }
    for x in ["<Patient", "<Patient xmlns=\"http://hl7.org/fhir\"><colour value=\"x\"/></Patient>"] {
        println!("{}", xml_to_json(x).expect_err("invalid"));
    }
}

/// The check after the JSON Schema takes a shorter road for resources without a
/// nested one: it must accept what the full check accepts, and still refuse, naming
/// the value at fault, what fhirbolt's typed model cannot hold.
#[test]
fn check_after_schema_agrees_with_the_full_check() {
    for (name, v) in examples() {
        assert!(check_typed_after_schema(&v).is_ok(), "{name} refused");
    }
    let refused = [
        (json!({"resourceType": "Patient", "active": "yes"}), "yes"),
        (json!({"resourceType": "Patient", "name": [{"family": 42}]}), "42"),
        (json!({"resourceType": "Patient", "active": true, "colour": "blue"}), "colour"),
        (json!({"resourceType": "Appointment", "status": "booked", "participant": [{"status": 7}]}), "7"),
        (
            json!({"resourceType": "Bundle", "type": "collection",
                   "entry": [{"resource": {"resourceType": "Patient", "bogus": 1}}]}),
            "bogus",
        ),
    ];
    for (r, named) in refused {
        assert!(check_typed(&r).is_err(), "{r}");
        let e = check_typed_after_schema(&r).expect_err("refused after the schema too");
        assert!(e.contains(named), "{r}: {e}");
    }
}
