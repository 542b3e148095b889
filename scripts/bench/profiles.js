// Deterministic synthetic profiles for the benchmark (README "Inputs" layout and record shape).
//
// Every profile i is generated from its own PRNG stream seeded by (seed, i), so a part can
// be written by any worker in any order and the bytes never change. One pass over profile
// i writes its line in snapshot 1 and in snapshot 2, with the churn between them:
//
// - 20 audiences (aud-00 … aud-19, skewed popularity: aud-00 is the biggest); 2–6
//   membership entries a profile (about 4); snapshot-1 statuses ~12% realized, ~78%
//   existing, ~10% exited.
// - snapshot 2: an active entry exits with p = 0.025; a profile enters one new audience
//   with p = 0.09; an exited entry is dropped (50%), re-enters (3%) or stays exited;
//   realized becomes existing. About 5% of active memberships change.
// - 0.2% of profiles vanish in snapshot 2, 0.2% are new in it; ~15% change loyalty points,
//   ~1% their tier (attribute-only changes never enter an incremental export).
// - identityMap: email 0–3 ids (1% none; ~1.5% share a household address), ecid 1–3
//   ids, phone on some. Some names carry a comma, an apostrophe or non-ASCII letters.

export const GEN_VERSION = 1;

export const SNAPSHOTS = [
  { snapshotId: 'snap-20261120', evaluatedAt: '2026-11-20T05:00:00Z' },
  { snapshotId: 'snap-20261121', evaluatedAt: '2026-11-21T05:00:00Z' },
];

const AUDIENCE_NAMES = [
  'High Value Customers',
  'Cart Abandoners',
  'Newsletter Subscribers',
  'Lapsed Buyers',
  'Loyalty Gold+',
  'App Installers',
  'Winter Promo',
  'Churn Risk',
  'Recent Purchasers',
  'Store Visitors',
  'Email Engaged 30d',
  'Sports Enthusiasts',
  'Luxury Shoppers',
  'Discount Seekers',
  'New Parents',
  'Travel Intent',
  'Birthday This Month',
  'Reactivation Targets',
  'B2B Contacts',
  'Lookalike Prospects',
];

export const AUDIENCES = AUDIENCE_NAMES.map((name, i) => ({
  id: `aud-${String(i).padStart(2, '0')}`,
  name,
  profileType: i === 19 ? 'prospect' : 'person',
}));

// Popularity weights: aud-00 is picked most often, aud-19 least.
const WEIGHTS = AUDIENCES.map((_, i) => 1 / (i + 3));
const CUMULATIVE = (() => {
  const total = WEIGHTS.reduce((a, b) => a + b, 0);
  let acc = 0;
  return WEIGHTS.map((w) => (acc += w / total));
})();

const FIRST = [
  'Ann',
  'Bob',
  'Carla',
  'David',
  'Elena',
  'Frank',
  'Grace',
  'Hiro',
  'Ines',
  'Jamal',
  'Kate',
  'Liam',
  'Maria',
  'Noah',
  'Olivia',
  'Pablo',
  'Quinn',
  'Rosa',
  'Sam',
  'Tara',
  'Umar',
  'Vera',
  'Will',
  'Xena',
  'Yusuf',
  'Zoë',
  'José',
  'Łukasz',
  'Chloé',
  'Mia',
  'Ethan',
  'Ava',
  'Lucas',
  'Sofia',
  'Mateo',
  'Emma',
  'Leo',
  'Isla',
  'Arjun',
  'Mei',
  'Sven',
  'Aisha',
];
const LAST = [
  'Lee',
  'Stone',
  'Garcia',
  'Smith',
  'Müller',
  "O'Neil",
  'Nguyen',
  'Kim',
  'Patel',
  'Rossi',
  'Dubois',
  'Novak',
  'Silva',
  'Johnson',
  'Brown',
  'Tanaka',
  'Kowalski',
  'Andersen',
  'Okafor',
  'Haddad',
  'Cohen',
  'Ivanova',
  'Martin',
  'López',
  'Smith, Jr.',
  'Williams',
  'Jones',
  'Davis',
  'Miller',
  'Wilson',
  'Moore',
  'Taylor',
  'Thomas',
  'White',
  'Harris',
  'Clark',
];
const slug = (s) =>
  s
    .normalize('NFD')
    .replace(/[^A-Za-z]/g, '')
    .toLowerCase() || 'x';
const FIRST_SLUG = FIRST.map(slug);
const LAST_SLUG = LAST.map(slug);
const DOMAINS = ['example.com', 'mail.example.net', 'inbox.example.org', 'corp.example.io', 'shop.example.co.uk'];
const CITIES = [
  ['Seattle', 'US', 'WA'],
  ['Austin', 'US', 'TX'],
  ['New York', 'US', 'NY'],
  ['Chicago', 'US', 'IL'],
  ['Denver', 'US', 'CO'],
  ['Toronto', 'CA', 'ON'],
  ['London', 'GB', 'ENG'],
  ['Paris', 'FR', 'IDF'],
  ['Berlin', 'DE', 'BE'],
  ['München', 'DE', 'BY'],
  ['Madrid', 'ES', 'MD'],
  ['São Paulo', 'BR', 'SP'],
  ['Tokyo', 'JP', '13'],
  ['Sydney', 'AU', 'NSW'],
  ['Kraków', 'PL', 'MA'],
  ['Washington, D.C.', 'US', 'DC'],
  ['Dublin', 'IE', 'D'],
  ['Milan', 'IT', 'MI'],
  ['Seoul', 'KR', '11'],
  ['Mumbai', 'IN', 'MH'],
];
const STREETS = [
  'Main St',
  'Oak Ave',
  'Pine Rd',
  'Maple Dr',
  'Cedar Ln',
  'Elm St',
  'Lake View',
  'Hill Rd',
  'Park Blvd',
  'River Way',
];
const GENDERS = ['female', 'male', 'non_specified', 'female', 'male'];
const CHANNELS = ['web', 'mobile', 'store', 'call_center'];

const P2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

// Days as YYYY-MM-DD, indexed from 2026-01-01 (day 0) to 2026-12-31.
const DAY0 = Date.UTC(2026, 0, 1);
const DAYS = Array.from({ length: 366 }, (_, d) => new Date(DAY0 + d * 86_400_000).toISOString().slice(0, 10));
const SNAP1_DAY = 323; // 2026-11-20
const SNAP2_DAY = 324; // 2026-11-21

/** A fast hash of two 32-bit ints (for per-profile seeds and household picks). */
function mix(a, b) {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return h >>> 0;
}

// mulberry32: one state per profile.
let state = 0;
function next() {
  state = (state + 0x6d2b79f5) | 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rf = () => next() / 4294967296;
const ri = (n) => Math.floor(rf() * n);

/** A time on `day` between hours [h0, h1): "YYYY-MM-DDTHH:mm:ssZ". */
function timeOn(day, h0, h1) {
  return `${DAYS[day]}T${P2[h0 + ri(h1 - h0)]}:${P2[ri(60)]}:${P2[ri(60)]}Z`;
}
/** A time in the 24 h before snapshot `snap` (index into SNAPSHOTS) was evaluated at 05:00. */
function recent(snap) {
  const day = snap === 0 ? SNAP1_DAY : SNAP2_DAY;
  return ri(2) === 0 ? timeOn(day - 1, 5, 24) : timeOn(day, 0, 5);
}

function pickAudience() {
  const r = rf();
  for (let a = 0; a < CUMULATIVE.length; a++) if (r < CUMULATIVE[a]) return a;
  return CUMULATIVE.length - 1;
}

function ids(values) {
  let s = '[';
  for (let i = 0; i < values.length; i++) s += `${i ? ',' : ''}{"id":"${values[i]}"}`;
  return `${s}]`;
}

function ups(entries, which) {
  // entries: [{a, s1, q1, s2, q2}] sorted by audience
  let s = '{';
  let first = true;
  for (const e of entries) {
    const st = which === 0 ? e.s1 : e.s2;
    if (st === null) continue;
    s += `${first ? '' : ','}"${AUDIENCES[e.a].id}":{"status":"${st}","lastQualificationTime":"${which === 0 ? e.q1 : e.q2}"}`;
    first = false;
  }
  return `${s}}`;
}

/**
 * Profile i as its NDJSON line in snapshot 1 and in snapshot 2 (null where it is absent).
 */
export function profileLines(seed, i) {
  state = mix(seed, i);
  const key = `p-${String(i).padStart(9, '0')}`;
  const presence = rf();
  const inSnap1 = presence >= 0.002; // 0.2% are new in snapshot 2
  const inSnap2 = presence < 0.002 || presence >= 0.004; // another 0.2% vanish

  const f = ri(FIRST.length);
  const l = ri(LAST.length);
  const domain = DOMAINS[ri(DOMAINS.length)];
  const emailCountRoll = rf();
  const emailCount = emailCountRoll < 0.01 ? 0 : emailCountRoll < 0.71 ? 1 : emailCountRoll < 0.93 ? 2 : 3;
  const emails = [];
  if (emailCount > 0) emails.push(`${FIRST_SLUG[f]}.${LAST_SLUG[l]}.${i}@${domain}`);
  for (let k = 1; k < emailCount; k++)
    emails.push(`${FIRST_SLUG[f][0]}${LAST_SLUG[l]}${i}+${k}@${DOMAINS[ri(DOMAINS.length)]}`);
  // Households of four neighbours share an address now and then (dedup has work to do).
  if (emailCount > 0 && mix(seed ^ 0x5bd1e995, i >>> 2) % 100 < 3 && rf() < 0.5)
    emails.push(`home.${i >>> 2}@family.example.com`);
  const ecidCountRoll = rf();
  const ecidCount = ecidCountRoll < 0.6 ? 1 : ecidCountRoll < 0.9 ? 2 : 3;
  const ecids = [];
  for (let k = 0; k < ecidCount; k++) ecids.push(`${next()}${String(next()).padStart(10, '0')}`);
  const phone = rf() < 0.4 ? `+1555${String(ri(10_000_000)).padStart(7, '0')}` : null;

  const city = CITIES[ri(CITIES.length)];
  const street = `${1 + ri(9999)} ${STREETS[ri(STREETS.length)]}`;
  const postal = String(10000 + ri(89999));
  const birth = `${1940 + ri(66)}-${P2[1 + ri(12)]}-${P2[1 + ri(28)]}`;
  const gender = GENDERS[ri(GENDERS.length)];
  const tierRoll = rf();
  const tier1 = tierRoll < 0.45 ? 'bronze' : tierRoll < 0.75 ? 'silver' : tierRoll < 0.93 ? 'gold' : 'platinum';
  const points1 = ri(tier1 === 'platinum' ? 50_000 : 10_000);
  const joined = DAYS[ri(300)];
  const channel = CHANNELS[ri(CHANNELS.length)];
  const optIn = rf() < 0.7 ? 'y' : 'n';

  // Memberships.
  const count = 2 + ri(5);
  const taken = new Uint8Array(AUDIENCES.length);
  const entries = [];
  for (let k = 0; k < count; k++) {
    let a = pickAudience();
    for (let tries = 0; taken[a] && tries < 8; tries++) a = pickAudience();
    if (taken[a]) continue;
    taken[a] = 1;
    const r = rf();
    let s1;
    let q1;
    if (r < 0.12) {
      s1 = 'realized';
      q1 = recent(0);
    } else if (r < 0.9) {
      s1 = 'existing';
      q1 = timeOn(200 + ri(SNAP1_DAY - 200), 0, 24);
    } else {
      s1 = 'exited';
      q1 = recent(0);
    }
    let s2;
    let q2 = q1;
    if (s1 === 'exited') {
      const t = rf();
      if (t < 0.5) s2 = null;
      else if (t < 0.53) {
        s2 = 'realized';
        q2 = recent(1);
      } else s2 = 'exited';
    } else if (rf() < 0.025) {
      s2 = 'exited';
      q2 = recent(1);
    } else s2 = 'existing';
    entries.push({ a, s1, q1, s2, q2 });
  }
  if (rf() < 0.09) {
    let a = ri(AUDIENCES.length);
    for (let tries = 0; taken[a] && tries < 8; tries++) a = ri(AUDIENCES.length);
    if (!taken[a]) {
      taken[a] = 1;
      entries.push({ a, s1: null, q1: null, s2: 'realized', q2: recent(1) });
    }
  }
  if (!inSnap1) {
    // New in snapshot 2: every membership entered in this evaluation.
    for (const e of entries) {
      if (e.s2 === 'existing' || (e.s2 === 'exited' && e.s1 !== 'exited')) {
        e.s2 = 'realized';
        e.q2 = recent(1);
      } else if (e.s2 === 'exited') e.s2 = null;
    }
  }
  entries.sort((x, y) => x.a - y.a);

  const tier2 = rf() < 0.01 ? (tier1 === 'bronze' ? 'silver' : tier1 === 'silver' ? 'gold' : 'platinum') : tier1;
  const points2 = rf() < 0.15 ? points1 + 1 + ri(500) : points1;

  const head =
    `{"profileId":"${key}","identityMap":{${emails.length ? `"email":${ids(emails)},` : ''}"ecid":${ids(ecids)}` +
    `${phone ? `,"phone":[{"id":"${phone}"}]` : ''}},` +
    `"person":{"name":{"firstName":"${FIRST[f].replace(/"/g, '\\"')}","lastName":"${LAST[l]}"},"birthDate":"${birth}","gender":"${gender}"},` +
    `${emails.length ? `"personalEmail":{"address":"${emails[0]}","status":"active"},` : ''}` +
    `${phone ? `"mobilePhone":{"number":"${phone}"},` : ''}` +
    `"homeAddress":{"street1":"${street}","city":"${city[0]}","stateProvince":"${city[2]}","postalCode":"${postal}","countryCode":"${city[1]}"},` +
    `"consents":{"marketing":{"email":{"val":"${optIn}"}}},"acquisition":{"channel":"${channel}","date":"${joined}"},`;
  const line1 = inSnap1
    ? `${head}"loyalty":{"tier":"${tier1}","points":${points1},"joinDate":"${joined}"},"segmentMembership":{"ups":${ups(entries, 0)}}}`
    : null;
  const line2 = inSnap2
    ? `${head}"loyalty":{"tier":"${tier2}","points":${points2},"joinDate":"${joined}"},"segmentMembership":{"ups":${ups(entries, 1)}}}`
    : null;
  return [line1, line2];
}
