// Italian first, with an English switch: one dictionary per language (English in
// i18n-en.js). Texts on screen carry their key (data-i18n) and dates and amounts
// their value (data-datetime, data-date, data-money), so a switch redraws them in
// place, without losing what the operator is doing.

import { dateTime, date, money } from './format.js';
import en from './i18n-en.js';
import integration from './i18n-integration.js';
import bookingWords from './i18n-booking.js';
import agenda from './i18n-agenda.js';
import figures from './i18n-figures.js';

const it = {
  'shell.title': 'Centro Unico di Prenotazione',
  'shell.skip': 'Vai al contenuto',
  'shell.desks': 'Sportelli',
  'shell.lang-switch': 'English',
  'shell.switch-role': 'Cambia ruolo',
  'shell.signout': 'Esci',
  'shell.keys': 'Tasti: Alt+1…5 sportelli · Invio conferma · Esc indietro · Alt+L lingua · Alt+N nuovo paziente · Alt+R rendiconto',
  'shell.no-desk': 'Nessuno sportello della console è previsto per il ruolo {role}.',
  'shell.noscript': 'La console richiede JavaScript.',
  'desk.booking': 'Prenota',
  'desk.payment': 'Cassa ticket',
  'desk.agenda': 'Agende',
  'desk.integration': 'Integrazione',
  'desk.figures': 'Tempi di attesa',
  'role.booking-point': 'Punto di prenotazione',
  'role.payment-point': 'Punto di pagamento',
  'role.provider': 'Erogatore (tecnico agende)',
  'role.admin': 'Amministrazione (direzione, integrazione)',
  'role.patient-app': 'App del paziente',
  'channel.counter': 'sportello',
  'channel.call-centre': 'call center',
  'channel.pharmacy': 'farmacia',
  'channel.gp-office': 'studio del medico di base',
  'channel.clinic': 'ambulatorio specialistico',
  'channel.web': 'web',
  'channel.kiosk': 'totem',
  'common.back': 'Indietro (Esc)',
  'common.cancel': 'Annulla (Esc)',
  'signin.title': 'Accesso operatore',
  'signin.with-token': 'Con il token',
  'signin.token': 'Token di accesso (Bearer)',
  'signin.token-hint': 'Il token rilasciato dal sistema di identità della regione (o da `cupola token`).',
  'signin.enter': 'Entra',
  'signin.demo': 'Demo: scegli un ruolo e la sua organizzazione',
  'signin.demo-note': 'Solo su un gateway avviato con --demo: il token è firmato con la chiave di sviluppo.',
  'signin.role': 'Ruolo',
  'signin.org': 'Organizzazione',
  'signin.not-a-token': 'Questo non è un token JWT: incollalo intero.',
  'signin.expired': 'Il token è scaduto: accedi di nuovo.',
  'signin.oauth': 'Identità regionale',
  'signin.oauth-enter': "Accedi con l'identità regionale",
  'signin.oauth-note': 'Si apre la pagina di accesso della regione; poi si torna qui.',
  'signin.oauth-insecure': "L'accesso regionale richiede una pagina sicura (https).",
  'signin.oauth-refused': 'Accesso non riuscito: {description} ({error})',
  'signin.oauth-state': 'La risposta del sistema di identità non corrisponde a questo accesso: riprova.',
  'signin.oauth-unreachable': 'Il sistema di identità non risponde: {detail}',
  'signin.oauth-exchange': 'Il sistema di identità non ha rilasciato il token: {description} ({error})',
  'patient.title': 'Paziente',
  'patient.cf': 'Codice fiscale',
  'patient.or-name': 'oppure cognome e data di nascita',
  'patient.family': 'Cognome',
  'patient.birthdate': 'Data di nascita',
  'patient.search': 'Cerca',
  'patient.need-name': 'Scrivi il cognome e la data di nascita.',
  'patient.none': 'Nessun paziente trovato.',
  'patient.banner': 'Paziente',
  'patient.born': 'nato/a il',
  'patient.change': 'Cambia paziente (Alt+N)',
  'cf.hint': '16 caratteri, lettere maiuscole e cifre.',
  'cf.valid': 'Codice fiscale valido. Invio per cercare.',
  'cf.chars': 'Solo lettere e cifre.',
  'cf.position': 'Il carattere {n} ({c}) non va bene in quella posizione.',
  'cf.partial': 'Mancano {n} caratteri.',
  'cf.long': 'Il codice fiscale ha 16 caratteri.',
  'cf.check': 'Il carattere di controllo non torna (sarebbe {c}): ricontrolla il codice.',
  'request.title': 'Prescrizione',
  'request.nre': 'NRE (numero di ricetta elettronica)',
  'request.nre-hint': 'Il numero che inizia con 070A. Invio per le proposte.',
  'request.nre-bad': 'L’NRE ha la forma {format} (9 una cifra, A una lettera).',
  'request.or-service': 'oppure una prestazione del catalogo',
  'request.service': 'Prestazione',
  'request.service-hint': 'Codice o nome del catalogo regionale. Invio per le proposte.',
  'request.class': 'Classe di priorità',
  'request.class-short': 'Classe',
  'request.no-class': '— nessuna —',
  'request.from': 'Dal giorno',
  'request.need-service': 'Scrivi il codice della prestazione.',
  'request.prescription': 'Prescrizione',
  'request.other-patient': 'La prescrizione {nre} è di un altro paziente ({who}).',
  'request.register': 'Nessuna prescrizione con NRE {nre}: registrala dalla ricetta.',
  'request.register-save': 'Registra e cerca',
  'proposals.title': 'Proposte',
  'proposals.first': 'Prima disponibilità:',
  'proposals.at': 'a',
  'proposals.none': 'Nessuna disponibilità nel periodo.',
  'proposals.within': 'Entro i tempi',
  'proposals.outside': 'Fuori dai tempi',
  'proposals.expires': 'proposta valida fino a',
  'proposals.pathway': 'Percorso di tutela',
  'proposals.keys': '↑ ↓ scorri · Invio blocca il posto · Canc (o R) rifiuta · Esc indietro',
  'proposals.decline-title': 'Rifiutare questa proposta?',
  'proposals.decline-warning': 'La proposta è entro i tempi: rifiutandola il paziente rinuncia alla garanzia dei tempi per questa prescrizione.',
  'proposals.decline-confirm': 'Conferma il rifiuto',
  'hold.title': 'Posto bloccato',
  'hold.left': 'Il blocco scade tra',
  'hold.warning': 'Il blocco sta per scadere: prenota ora.',
  'hold.lapsed': 'Il blocco è scaduto: ecco le proposte di nuovo.',
  'hold.book': 'Prenota (Invio)',
  'hold.release': 'Rilascia (Esc)',
  'hold.released-reason': 'rilasciato dall’operatore',
  'hold.keys': 'Invio prenota · Esc rilascia il posto',
  'booked.title': 'Prenotato',
  'booked.code': 'Codice prenotazione',
  'booked.print': 'Foglio di prenotazione (S)',
  'booked.print-80': 'Foglio su 80 mm',
  'booked.pay': 'Incassa il ticket (I)',
  'booked.cancel': 'Disdici (D)',
  'booked.new': 'Nuova prenotazione (N)',
  'booked.keys': 'S stampa · I incassa · D disdici · N nuova prenotazione · Esc indietro',
  'ticket.owed': 'Ticket da pagare',
  'ticket.exemption': 'Esenzione',
  'ticket.exempt': 'Esente',
  'ticket.not-exempt': 'Nessuna esenzione',
  'ticket.notice': 'Avviso pagoPA',
  'sheet.title': 'Foglio di prenotazione',
  'sheet.patient': 'Paziente',
  'sheet.when': 'Data e ora',
  'sheet.service': 'Prestazione',
  'sheet.where': 'Luogo',
  'sheet.provider': 'Erogatore',
  'sheet.booked-at': 'Prenotato presso',
  'sheet.preparation': 'Preparazione',
  'sheet.note': 'Presentarsi 15 minuti prima con la ricetta, un documento e la tessera sanitaria.',
  'sheet.cancel-notice': 'Per disdire senza pagare il ticket: almeno {hours} ore prima.',
  'appointments.title': 'Appuntamenti del paziente',
  'appointments.none': 'Nessun appuntamento prenotato.',
  'appointments.reschedule': 'Sposta',
  'appointments.cancel': 'Disdici',
  'appointments.rescheduling': 'Spostamento dell’appuntamento del',
  'appointments.no-service': 'L’appuntamento non dice la prestazione: cercala dal catalogo.',
  'cancel.title': 'Disdire l’appuntamento?',
  'cancel.reason': 'Motivo',
  'cancel.default-reason': 'su richiesta del paziente',
  'cancel.refund-after': 'Il ticket e l’eventuale rimborso sono decisi dal sistema alla disdetta e mostrati qui dopo la conferma.',
  'cancel.confirm': 'Conferma la disdetta',
  'cancel.done': 'Appuntamento disdetto',
  'cancel.ticket-now': 'Ticket ora',
  'cancel.paid': 'Pagato',
  'cancel.invoice-status': 'Stato del ticket',
  'cancel.no-ticket': 'Nessun ticket legato a questa prenotazione.',
  'pay.find': 'Cosa deve pagare',
  'pay.query': 'Codice prenotazione, NRE, codice fiscale o avviso pagoPA',
  'pay.query-hint': 'Invio per cercare.',
  'pay.kind.empty': 'Invio per cercare.',
  'pay.kind.cf': 'Codice fiscale.',
  'pay.kind.nre': 'NRE della ricetta.',
  'pay.kind.notice': 'Avviso pagoPA.',
  'pay.kind.iuv': 'IUV pagoPA.',
  'pay.kind.booking-code': 'Codice prenotazione.',
  'pay.kind.other': 'Un codice: lo cerco tra gli identificativi dei ticket.',
  'pay.need-query': 'Scrivi un codice.',
  'pay.none': 'Nessun ticket trovato per questo codice.',
  'pay.owed': 'Ticket',
  'pay.total': 'Totale da pagare',
  'pay.nothing': 'Niente da pagare.',
  'pay.nre': 'NRE',
  'pay.ticket': 'Ticket',
  'pay.to-pay': 'Da pagare',
  'pay.status.balanced': 'Pagato',
  'pay.status.issued': 'Emesso',
  'pay.status.cancelled': 'Annullato',
  'pay.status.draft': 'Bozza',
  'pay.status.entered-in-error': 'Annullato',
  'pay.pay': 'Incassa',
  'pay.receipt': 'Ricevuta',
  'pay.confirm-title': 'Incasso',
  'pay.amount': 'Importo',
  'pay.reference': 'Riferimento',
  'pay.confirm': 'Conferma l’incasso (Invio)',
  'pay.no-payer': 'Non trovo l’ente che riceve i ticket (Organization di tipo pay).',
  'receipt.title': 'Ricevuta',
  'receipt.paid': 'Pagato',
  'receipt.print': 'Stampa ricevuta (80 mm)',
  'receipt.print-a4': 'Stampa su A4',
  'receipt.next': 'Prossimo pagamento (N)',
  'receipt.keys': 'Invio stampa · N prossimo pagamento',
  'remittance.title': 'Rendiconto giornaliero',
  'remittance.show': 'Mostra il rendiconto (Alt+R)',
  'remittance.print': 'Stampa il rendiconto',
  'remittance.points-only': 'Il rendiconto è di un punto: accedi con la tua organizzazione per consultarlo.',
  'remittance.none': 'Nessun incasso il {day}.',
  'remittance.day': 'Giorno',
  'remittance.total': 'Totale incassato',
  'remittance.count': 'Movimenti',
  'remittance.reference': 'Riferimento',
  'remittance.invoice': 'Ticket',
  'remittance.kind': 'Tipo',
  'remittance.amount': 'Importo',
  'remittance.payment': 'Pagamento',
  'remittance.adjustment': 'Rimborso',
};

// Each desk's own words, kept in its own file.
for (const extra of [integration, bookingWords, agenda, figures]) { Object.assign(it, extra.it); Object.assign(en, extra.en); }
const dicts = { it, en };
const STORE = 'cupola.lang';
let current = (() => {
  try { return dicts[localStorage.getItem(STORE)] ? localStorage.getItem(STORE) : 'it'; } catch { return 'it'; }
})();

export function lang() { return current; }

export function t(key, args) {
  const text = dicts[current][key] ?? it[key] ?? key;
  if (!args) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (args[name] === undefined ? m : String(args[name])));
}

export function keys(language) { return Object.keys(dicts[language] || {}); }

// Redraws every labelled text, date and amount under `root` in the language.
export function relabel(root = document.body) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined);
  }
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-datetime]')) el.textContent = dateTime(el.dataset.datetime, current);
  for (const el of root.querySelectorAll('[data-date]')) el.textContent = date(el.dataset.date, current);
  for (const el of root.querySelectorAll('[data-money]')) {
    el.textContent = el.dataset.money === '' ? '—' : money(el.dataset.money, current);
  }
}

export function setLang(language) {
  current = dicts[language] ? language : 'it';
  try { localStorage.setItem(STORE, current); } catch { /* private mode */ }
  document.documentElement.lang = current;
  const other = document.getElementById('lang');
  if (other) other.lang = current === 'it' ? 'en' : 'it';
  relabel(document.body);
}
