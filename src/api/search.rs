//! Search: `GET /fhir/Type?…` and `POST /fhir/Type/_search`, answered with a
//! `searchset` Bundle with stable paging links.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::crud::served;
use super::limit::Body;
use super::{AppState, Ctx, Reply, Touched};
use crate::access::Access;
use crate::auth::Interaction;
use crate::error::{outcome, Issue};
use crate::fhir::bundle::{Bundle, Entry, Res};
use crate::fhir::elements;
use crate::store::Tx;
use crate::Result;

pub async fn search_get(State(s): State<AppState>, Path(res_type): Path<String>, ctx: Ctx) -> Response {
    let r = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Search)?;
        let b = search_bundle(&s, &ctx.access, &res_type, &ctx.query, ctx.lenient()).await?;
        Ok(Reply::new(StatusCode::OK).body(b.render(ctx.out)?, ctx.out).touched(touched(&s, &b)))
    };
    ctx.respond(r.await)
}

/// `POST /fhir/Type/_search` with a form body: the same as GET, parameters from both.
pub async fn search_post(
    State(s): State<AppState>,
    Path(res_type): Path<String>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let r = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Search)?;
        let mut query = ctx.query.clone();
        query.extend(url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        let b = search_bundle(&s, &ctx.access, &res_type, &query, ctx.lenient()).await?;
        Ok(Reply::new(StatusCode::OK).body(b.render(ctx.out)?, ctx.out).touched(touched(&s, &b)))
    };
    ctx.respond(r.await)
}

/// Runs a search and builds its Bundle (also used by transaction GET entries).
pub async fn search_bundle(
    s: &AppState,
    access: &Access,
    res_type: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<Bundle> {
    search_bundle_on(s, access, None, res_type, query, lenient).await
}

/// The resources a Bundle carries, as `Type/id`, for the audit trail.
pub fn touched(s: &AppState, b: &Bundle) -> Touched {
    let prefix = format!("{}/", s.base);
    let entities =
        b.entries.iter().filter_map(|e| e.full_url.as_deref()?.strip_prefix(&prefix).map(str::to_string)).collect();
    Touched { entities, ..Default::default() }
}

/// The same, inside a transaction when `tx` is given (its GET entries read on the
/// transaction's own connection, so they see its writes and need no second one).
pub async fn search_bundle_on(
    s: &AppState,
    access: &Access,
    tx: Option<&mut Tx>,
    res_type: &str,
    query: &[(String, String)],
    lenient: bool,
) -> Result<Bundle> {
    let q = s.store.parse_search(access, res_type, query, lenient)?;
    let page = match tx {
        Some(tx) => s.store.search_on(tx, &q).await?,
        None => s.store.search(&q).await?,
    };
    let mut b = Bundle::new("searchset");
    b.total = page.total;
    let link = |offset: usize| format!("{}/{res_type}?{}", s.base, q.link_query(offset, page.snapshot));
    let (offset, count) = (q.offset(), q.count());
    b.links.push(("self", link(offset)));
    let more = match page.total {
        Some(t) => ((offset + count) as i64) < t,
        None => page.matches.len() == count,
    };
    if more && !q.count_only() {
        b.links.push(("next", link(offset + count)));
    }
    if offset > 0 {
        b.links.push(("previous", link(offset.saturating_sub(count))));
    }
    let shape = |body: String| -> Result<Res> {
        Ok(match elements::shaped(&body, q.elements(), q.summary(), &s.checker)? {
            Some(v) => Res::Value(v),
            None => Res::Raw(body),
        })
    };
    for (mode, list) in [("match", page.matches), ("include", page.included)] {
        for (_, body) in list {
            let full_url = resource_url(s, &body);
            b.entries.push(Entry {
                full_url,
                resource: Some(shape(body)?),
                search_mode: Some(mode),
                ..Default::default()
            });
        }
    }
    if !q.warnings().is_empty() {
        let issues: Vec<Issue> =
            q.warnings().iter().map(|w| Issue::warning("not-supported", None, w.clone())).collect();
        b.entries.push(Entry {
            resource: Some(Res::Value(outcome(&issues))),
            search_mode: Some("outcome"),
            ..Default::default()
        });
    }
    Ok(b)
}

/// `base/Type/id` of a stored body, read from its first fields.
fn resource_url(s: &AppState, body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "resourceType")]
        rt: String,
        id: String,
    }
    serde_json::from_str::<Head>(body).ok().map(|h| s.url(&h.rt, &h.id))
}
