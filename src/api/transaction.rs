//! `POST /fhir` with a transaction (all or nothing, `urn:uuid:` references resolved,
//! conditional entries) or a batch (each entry on its own).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::entries::{local_target, parse_bundle, parse_entry, EntryOp, Op};
use super::limit::Body;
use super::{AppState, Ctx, Reply};
use crate::fhir::bundle::{Bundle, Entry, Res};
use crate::fhir::check::At;
use crate::fhir::{codec, meta, references};
use crate::store::{current, current_visible, new_id, version_of, Stored, Tx, Write, WriteKind};
use crate::{Error, Result};

pub async fn bundle(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let value = codec::parse_body(&body, ctx.header("content-type"))?;
        let (kind, entries) = parse_bundle(&value)?;
        let bundle = if kind == "transaction" {
            transaction(&s, &ctx, &entries).await?
        } else {
            batch(&s, &ctx, &entries).await?
        };
        let mut touched = super::search::touched(&s, &bundle);
        touched.interaction = Some(if kind == "transaction" { "transaction" } else { "batch" });
        Ok(Reply::new(StatusCode::OK).body(bundle.render(ctx.out)?, ctx.out).touched(touched))
    };
    ctx.respond(r.await)
}

/// Parses and checks every entry; any fault fails the whole transaction.
fn prepare(s: &AppState, ctx: &Ctx, entries: &[Value]) -> Result<Vec<EntryOp>> {
    let mut ops = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let op = parse_entry(i, e, &s.base)?;
        ctx.allow(&op.res_type, op.interaction()).map_err(|e| e.in_entry(i))?;
        if let Some(r) = &op.resource {
            let id = match &op.op {
                Op::Update { id, .. } => Some(id.as_str()),
                _ => None,
            };
            s.checker.check(r, &op.res_type, id, At::Entry(i))?;
        }
        ops.push(op);
    }
    Ok(ops)
}

async fn transaction(s: &AppState, ctx: &Ctx, entries: &[Value]) -> Result<Bundle> {
    let mut ops = prepare(s, ctx, entries)?;
    let mut tx = s.store.begin().await?;
    // Ids first, so that references between entries can be resolved before any write.
    let mut map: HashMap<String, String> = HashMap::new();
    let mut assigned: HashMap<usize, Assigned> = HashMap::new();
    for op in &ops {
        let a = assign(s, ctx, &mut tx, op).await.map_err(|e| e.in_entry(op.index))?;
        if let (Some(url), Some(id)) = (&op.full_url, a.id()) {
            map.insert(url.clone(), format!("{}/{id}", op.res_type));
        }
        assigned.insert(op.index, a);
    }
    for op in &mut ops {
        if let Some(r) = &mut op.resource {
            references::rewrite(r, &map);
        }
    }
    check_references(s, ctx, &mut tx, &ops, &map).await?;
    let mut results: Vec<Option<Entry>> = vec![None; ops.len()];
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| ops[i].order());
    for i in order {
        let op = &ops[i];
        let a = assigned.remove(&op.index).unwrap_or(Assigned::None);
        let entry = execute(s, ctx, &mut tx, op, a).await.map_err(|e| e.in_entry(op.index))?;
        results[i] = Some(entry);
    }
    tx.commit().await?;
    let mut b = Bundle::new("transaction-response");
    b.entries = results.into_iter().flatten().collect();
    Ok(b)
}

/// Each batch entry runs in its own transaction; a failure is reported in its entry.
async fn batch(s: &AppState, ctx: &Ctx, entries: &[Value]) -> Result<Bundle> {
    let mut b = Bundle::new("batch-response");
    for (i, e) in entries.iter().enumerate() {
        let one = async {
            let op = parse_entry(i, e, &s.base)?;
            ctx.allow(&op.res_type, op.interaction())?;
            if let Some(r) = &op.resource {
                let id = if let Op::Update { id, .. } = &op.op { Some(id.as_str()) } else { None };
                s.checker.check(r, &op.res_type, id, At::Entry(i))?;
            }
            let mut tx = s.store.begin().await?;
            let a = assign(s, ctx, &mut tx, &op).await?;
            let entry = execute(s, ctx, &mut tx, &op, a).await?;
            tx.commit().await?;
            Ok::<_, Error>(entry)
        };
        b.entries.push(match one.await {
            Ok(entry) => entry,
            Err(e) => failed_entry(e.in_entry(i)),
        });
    }
    Ok(b)
}

fn failed_entry(e: Error) -> Entry {
    let status = e.status();
    Entry {
        response: Some(
            json!({"status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")), "outcome": e.outcome()}),
        ),
        ..Default::default()
    }
}

/// The id a create or conditional update will use, decided before any write.
enum Assigned {
    None,
    /// A new resource with this id.
    New(String),
    /// A conditional create matched this existing one.
    Matched(String),
    /// A conditional update matched this one.
    Existing(String),
}

impl Assigned {
    fn id(&self) -> Option<&str> {
        match self {
            Assigned::None => None,
            Assigned::New(id) | Assigned::Matched(id) | Assigned::Existing(id) => Some(id),
        }
    }
}

async fn assign(s: &AppState, ctx: &Ctx, tx: &mut Tx, op: &EntryOp) -> Result<Assigned> {
    Ok(match &op.op {
        Op::Create { if_none_exist: Some(q) } => {
            match s.store.condition_ids_in(tx, &ctx.access, &op.res_type, q).await?.as_slice() {
                [] => Assigned::New(new_id()),
                [id] => Assigned::Matched(id.clone()),
                _ => {
                    return Err(Error::PreconditionFailed(format!("ifNoneExist matches more than one {}", op.res_type)))
                }
            }
        }
        Op::Create { if_none_exist: None } => Assigned::New(new_id()),
        Op::Update { id, .. } => Assigned::Existing(id.clone()),
        Op::CondUpdate { query } => {
            match s.store.condition_ids_in(tx, &ctx.access, &op.res_type, query).await?.as_slice() {
                [] => Assigned::New(
                    op.resource
                        .as_ref()
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(new_id),
                ),
                [id] => Assigned::Existing(id.clone()),
                _ => {
                    return Err(Error::PreconditionFailed(format!(
                        "the conditional update matches more than one {}",
                        op.res_type
                    )))
                }
            }
        }
        _ => Assigned::None,
    })
}

/// Every reference must resolve: to an entry of this Bundle or to a stored resource
/// the caller may see.
async fn check_references(
    s: &AppState,
    ctx: &Ctx,
    tx: &mut Tx,
    ops: &[EntryOp],
    map: &HashMap<String, String>,
) -> Result<()> {
    let in_bundle: std::collections::HashSet<&String> = map.values().collect();
    for op in ops {
        let Some(r) = &op.resource else { continue };
        for (path, reference) in references::literal_references(r, &format!("Bundle.entry[{}].resource", op.index)) {
            if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
                return Err(Error::invalid(
                    "not-found",
                    Some(path),
                    format!("{reference} is not the fullUrl of any entry in this transaction"),
                ));
            }
            let Some((t, id)) = local_target(&reference, &s.base) else {
                continue;
            };
            let key = format!("{t}/{id}");
            if in_bundle.contains(&key) {
                continue;
            }
            let exists = current_visible(tx, t, id, &ctx.access.referable(t)).await?.is_some_and(|c| !c.deleted);
            if !exists {
                return Err(Error::invalid(
                    "not-found",
                    Some(path),
                    format!("{key} does not exist; create it first or include it in the transaction"),
                ));
            }
        }
    }
    Ok(())
}

async fn execute(s: &AppState, ctx: &Ctx, tx: &mut Tx, op: &EntryOp, a: Assigned) -> Result<Entry> {
    let rt = op.res_type.as_str();
    let resource = op.resource.clone().unwrap_or(Value::Null);
    let w = match (&op.op, a) {
        (Op::Create { .. }, Assigned::Matched(id)) => {
            Write { kind: WriteKind::Matched, stored: current(tx, s.store.dialect(), rt, &id, false).await? }
        }
        (Op::Create { .. } | Op::CondUpdate { .. }, Assigned::New(id)) => Write {
            kind: WriteKind::Created,
            stored: Some(s.store.insert_checked(tx, &ctx.access, rt, resource, &id, "POST").await?),
        },
        (Op::Update { id, if_match }, _) => s.store.update_in(tx, &ctx.access, rt, id, resource, *if_match).await?,
        (Op::CondUpdate { .. }, Assigned::Existing(id)) => {
            let mut resource = resource;
            resource["id"] = Value::String(id.clone());
            s.store.update_in(tx, &ctx.access, rt, &id, resource, None).await?
        }
        (Op::Delete { id }, _) => s.store.delete_in(tx, &ctx.access, rt, id).await?,
        (Op::CondDelete { query }, _) => s.store.conditional_delete_in(tx, &ctx.access, rt, query).await?,
        (Op::Read { id, version }, _) => return read_entry(s, ctx, tx, rt, id, *version).await,
        (Op::Search { query }, _) => {
            let bundle = super::search::search_bundle_on(s, &ctx.access, Some(tx), rt, query, ctx.lenient()).await?;
            return Ok(Entry {
                resource: Some(Res::Value(bundle.to_value()?)),
                response: Some(json!({"status": "200 OK"})),
                ..Default::default()
            });
        }
        _ => return Err(anyhow::anyhow!("entry {} has no assigned id", op.index).into()),
    };
    Ok(written_entry(s, w))
}

fn written_entry(s: &AppState, w: Write) -> Entry {
    let status = match w.kind {
        WriteKind::Created => "201 Created",
        WriteKind::Deleted | WriteKind::Nothing => "204 No Content",
        _ => "200 OK",
    };
    let Some(st) = w.stored else {
        return Entry { response: Some(json!({"status": status})), ..Default::default() };
    };
    let mut response =
        json!({"status": status, "etag": meta::etag(st.version), "lastModified": meta::instant(st.last_updated)});
    if w.kind != WriteKind::Deleted {
        response["location"] = json!(format!("{}/{}/_history/{}", st.res_type, st.id, st.version));
    }
    Entry {
        full_url: Some(s.url(&st.res_type, &st.id)),
        resource: st.body.map(Res::Raw),
        response: Some(response),
        ..Default::default()
    }
}

async fn read_entry(s: &AppState, ctx: &Ctx, tx: &mut Tx, rt: &str, id: &str, version: Option<i64>) -> Result<Entry> {
    let rule = ctx.access.read(rt);
    let st: Option<Stored> = match version {
        None => current_visible(tx, rt, id, &rule).await?,
        Some(v) => version_of(tx, rt, id, v, &rule).await?,
    };
    let st = st.ok_or_else(|| Error::NotFound(format!("{rt}/{id} is not known")))?;
    let body = st.body.clone().ok_or_else(|| Error::Gone(format!("{rt}/{id} was deleted")))?;
    Ok(Entry {
        full_url: Some(s.url(rt, id)),
        resource: Some(Res::Raw(body)),
        response: Some(
            json!({"status": "200 OK", "etag": meta::etag(st.version), "lastModified": meta::instant(st.last_updated)}),
        ),
        ..Default::default()
    })
}
