// What the desks show beside the booking data, read once and kept for the
// session: names of places, offers, providers and practitioners; the priority
// classes; the catalog; the health service that is paid the tickets.

import { get, resources, included } from './api.js';
import { personName } from './format.js';

const known = new Map(); // 'Type/id' → resource
let classes = null;
let catalogList = null;
let payerRef = null;

const INCLUDES = {
  HealthcareService: 'HealthcareService:organization',
  PractitionerRole: 'PractitionerRole:practitioner',
  Location: 'Location:organization',
};

// Reads what is not known yet of `refs` ('Type/id'), a search per type.
export async function resolve(refs) {
  const byType = new Map();
  for (const ref of new Set(refs)) {
    if (!ref || known.has(ref)) continue;
    const [type, id] = ref.split('/');
    if (!type || !id) continue;
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(id);
  }
  await Promise.all([...byType].map(async ([type, ids]) => {
    try {
      const bundle = await get(type, { _id: ids.join(','), _include: INCLUDES[type], _count: 100 });
      for (const [ref, r] of included(bundle)) known.set(ref, r);
    } catch {
      // Names are a help: the ids are shown when they cannot be read.
    }
  }));
}

export function lookup(ref) { return known.get(ref); }

function actor(appointment, type) {
  return (appointment?.participant || []).map((p) => p.actor?.reference).find((r) => r && r.startsWith(`${type}/`));
}

// The references of an Appointment's place, offer and practitioner.
export function placeRefs(appointment) {
  return ['Location', 'HealthcareService', 'PractitionerRole'].map((t) => actor(appointment, t)).filter(Boolean);
}

// Where an Appointment is: facility, its town and district, the offer, the provider
// and the practitioner, as far as they are known.
export function place(appointment) {
  const loc = known.get(actor(appointment, 'Location'));
  const hs = known.get(actor(appointment, 'HealthcareService'));
  const role = known.get(actor(appointment, 'PractitionerRole'));
  const orgRef = hs?.providedBy?.reference || loc?.managingOrganization?.reference || role?.organization?.reference;
  const org = known.get(orgRef);
  const doctor = known.get(role?.practitioner?.reference);
  const address = loc?.address || {};
  return {
    location: loc?.name || hs?.name || '',
    town: address.city || '',
    district: address.district || '',
    address: [...(address.line || []).filter((l) => l !== loc?.name), address.postalCode, address.city].filter(Boolean).join(', '),
    service: hs?.name || '',
    provider: org?.name || orgRef || '',
    practitioner: doctor ? personName(doctor) : '',
  };
}

// The name of a service: the Appointment's serviceType display, else the catalog's.
export function serviceOf(resource) {
  const concepts = [].concat(resource?.serviceType || resource?.code || []);
  const c = concepts.flatMap((x) => x.coding || [])[0];
  if (!c) return '';
  const display = c.display || catalogList?.find((x) => x.code === c.code)?.display || '';
  return display ? `${display} (${c.code})` : c.code;
}

// The priority classes (CodeSystem/priority-class): code → {display, definition}.
export async function priorityClasses() {
  if (classes) return classes;
  classes = new Map();
  try {
    const cs = await get('CodeSystem/priority-class');
    for (const c of cs.concept || []) classes.set(c.code, { display: c.display, definition: c.definition });
  } catch {
    // Shown as bare codes.
  }
  return classes;
}

// The services of the regional catalog that can be booked: [{code, display}].
export async function catalog() {
  if (catalogList) return catalogList;
  const cs = await get('CodeSystem/catalog');
  const retired = (c) => (c.property || []).some((p) => (p.code === 'status' && p.valueCode === 'retired') || (p.code === 'inactive' && p.valueBoolean));
  catalogList = (cs.concept || []).filter((c) => !retired(c)).map((c) => ({ code: c.code, display: c.display }));
  return catalogList;
}

// The catalog code an operator typed: `89.7A.3`, or `89.7A.3 — Visita …` picked
// from the list, or a service's exact name.
export function catalogCode(typed) {
  const v = typed.trim();
  if (!v || !catalogList) return v.split(/\s/)[0] || '';
  const first = v.split(/\s+[—-]\s+|\s/)[0];
  const byCode = catalogList.find((c) => c.code.toLowerCase() === first.toLowerCase());
  if (byCode) return byCode.code;
  const byName = catalogList.find((c) => (c.display || '').toLowerCase() === v.toLowerCase());
  return byName ? byName.code : first;
}

// The organisation that is paid the tickets (type `pay`), for PaymentNotice.recipient.
export async function payer() {
  if (payerRef) return payerRef;
  const bundle = await get('Organization', { type: 'pay', _count: 1 });
  const org = resources(bundle, 'Organization')[0];
  payerRef = org ? `Organization/${org.id}` : null;
  return payerRef;
}

// The name of an organisation, read once.
export async function organisationName(id) {
  if (!id) return '';
  const ref = `Organization/${id}`;
  if (!known.has(ref)) await resolve([ref]);
  return known.get(ref)?.name || ref;
}
