// The booking desk's later words — the cancel panel's refund preview ($cancel with
// preview=true), the proposals' deadline date and the waiting list — merged into the dictionaries by
// i18n.js (kept apart so that desks built in parallel do not edit one list).

export default {
  it: {
    'proposals.by': 'entro il',
    'cancel.preview-loading': 'Calcolo del rimborso…',
    'cancel.preview-title': 'Se confermi la disdetta',
    'cancel.preview.refund': 'Disdetta in tempo: il ticket è liberato e si rimborsano',
    'cancel.preview.freed': 'Disdetta in tempo: il ticket è liberato; non c’era nulla di pagato da rimborsare.',
    'cancel.preview.kept': 'Disdetta tardiva: il ticket resta da pagare, nessun rimborso.',
    'cancel.preview.nothing-owed': 'Nulla è dovuto per questo ticket (esente o gratuito).',
    'cancel.preview.no-ticket': 'Nessun ticket legato a questa prenotazione: nulla da rimborsare.',
    'cancel.preview-owed': 'Ticket dopo la disdetta',
    'cancel.preview-failed': 'Il rimborso non si può calcolare in anticipo: sarà mostrato dopo la conferma.',
    'waitlist.put': 'Metti in lista d’attesa',
    'waitlist.done': 'In lista d’attesa: il primo posto che si libera le sarà offerto.',
    'waitlist.line': 'Lista d’attesa per questa prestazione',
  },
  en: {
    'proposals.by': 'by',
    'cancel.preview-loading': 'Working out the refund…',
    'cancel.preview-title': 'If you confirm the cancellation',
    'cancel.preview.refund': 'Cancelled in time: the ticket is freed and the patient gets back',
    'cancel.preview.freed': 'Cancelled in time: the ticket is freed; nothing was paid, nothing to give back.',
    'cancel.preview.kept': 'A late cancellation: the ticket stays owed, no refund.',
    'cancel.preview.nothing-owed': 'Nothing is owed on this ticket (exempt or free).',
    'cancel.preview.no-ticket': 'No ticket belongs to this booking: nothing to refund.',
    'cancel.preview-owed': 'Ticket after the cancellation',
    'cancel.preview-failed': 'The refund cannot be worked out beforehand: it is shown after you confirm.',
    'waitlist.put': 'Put on the waiting list',
    'waitlist.done': 'On the waiting list: the first slot that frees will be offered.',
    'waitlist.line': 'Waiting list for this service',
  },
};
