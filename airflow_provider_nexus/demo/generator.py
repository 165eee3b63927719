"""Seeded, vectorised generator of the demo's raw data.

One synthetic world (people working at companies) is drawn from the seed, then split into
delivery batches. Four sources describe overlapping parts of it, each in its own shape and
format and with the usual mess (case, spaces, phone formats, placeholders, blanks):

========  ==========================================  ==============================
source    delivered as                                 one row is
========  ==========================================  ==============================
crm       CSV ``crm/contacts_NNNN.csv``                a contact (re-delivered when it
          CSV ``crm/companies_NNNN.csv``               changes) / a company
billing   DuckDB tables ``landing.billing_customers``  a customer (re-synced on plan
          and ``landing.billing_invoices`` with a      upgrade) / an invoice
          ``synced_at`` column, appended per batch
product   NDJSON ``product/events_NNNN.ndjson``        an analytics event
support   Parquet ``support/tickets_NNNN.parquet``     a ticket
========  ==========================================  ==============================

``NNNN`` is the 0-based batch number. Batch ``k`` covers ``batch_period(spec, k)`` (one day by
default) and is delivered at its end (``batch_times``). Writing batch ``k`` writes only that
batch's rows and never touches earlier files; the world is regenerated from the seed, so any
batch can be written on its own, and writing it again gives identical output.

Billing rows are stamped with ``synced_at`` inside their batch's period, except a few "late"
rows of every batch ``k >= 1`` whose ``synced_at`` lies 2-8 minutes before the end of batch
``k-1``'s period (and below that batch's highest ``synced_at``, which is pinned to one second
before the period's end): a reader that resumes from its watermark misses them unless it looks
back about 10 minutes.

Identity ground truth: every row belongs to one synthetic person (index ``0..persons-1``);
``ground_truth(spec)`` returns the mapping from each source's natural key to that person.
About 10% of persons appear in all four sources.

Everything is column-at-a-time (numpy for the draws, pyarrow compute for the strings); memory
is bounded by the numeric world (a few tens of bytes per generated row) plus one batch of
strings at a time.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# -- vocabulary --------------------------------------------------------------------------------

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Ronald",
    "Rebecca",
    "Jason",
    "Sharon",
    "Edward",
    "Laura",
    "Jeffrey",
    "Cynthia",
    "Ryan",
    "Dorothy",
    "Jacob",
    "Amy",
    "Gary",
    "Kathleen",
    "Nicholas",
    "Angela",
    "Eric",
    "Shirley",
    "Jonathan",
    "Emma",
    "Stephen",
    "Brenda",
    "Larry",
    "Pamela",
    "Justin",
    "Nicole",
    "Scott",
    "Anna",
    "Brandon",
    "Samantha",
    "Benjamin",
    "Katherine",
    "Samuel",
    "Christine",
    "Gregory",
    "Debra",
    "Alexander",
    "Rachel",
    "Patrick",
    "Carolyn",
    "Frank",
    "Janet",
    "Raymond",
    "Maria",
    "Jack",
    "Olivia",
    "Dennis",
    "Heather",
    "Jerry",
    "Helen",
    "Tyler",
    "Catherine",
    "Aaron",
    "Diane",
    "Jose",
    "Julie",
    "Adam",
    "Victoria",
    "Nathan",
    "Joyce",
    "Henry",
    "Lauren",
    "Zachary",
    "Kelly",
    "Douglas",
    "Christina",
    "Peter",
    "Ruth",
    "Kyle",
    "Joan",
    "Noah",
    "Virginia",
    "Ethan",
    "Judith",
    "Jeremy",
    "Evelyn",
    "Christian",
    "Hannah",
    "Walter",
    "Andrea",
    "Keith",
    "Megan",
    "Austin",
    "Cheryl",
    "Roger",
    "Jacqueline",
    "Terry",
    "Madison",
    "Sean",
    "Teresa",
    "Gerald",
    "Abigail",
    "Carl",
    "Sophia",
    "Dylan",
    "Martha",
    "Harold",
    "Sara",
    "Jordan",
    "Gloria",
    "Jesse",
    "Janice",
    "Bryan",
    "Kathryn",
    "Lawrence",
    "Ann",
    "Arthur",
    "Isabella",
    "Gabriel",
    "Judy",
    "Bruce",
    "Charlotte",
    "Logan",
    "Julia",
    "Billy",
    "Grace",
    "Joe",
    "Amber",
    "Alan",
    "Alice",
    "Juan",
    "Jean",
    "Elijah",
    "Denise",
    "Willie",
    "Frances",
    "Albert",
    "Danielle",
    "Wayne",
    "Marilyn",
    "Randy",
    "Natalie",
    "Mason",
    "Beverly",
    "Vincent",
    "Diana",
    "Liam",
    "Brittany",
    "Roy",
    "Theresa",
    "Bobby",
    "Kayla",
    "Caleb",
    "Alexis",
    "Bradley",
    "Doris",
    "Russell",
    "Lori",
    "Lucas",
    "Tiffany",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Gonzales",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Romero",
    "Jordan",
    "Patterson",
    "Alexander",
    "Hamilton",
    "Graham",
    "Reynolds",
    "Griffin",
    "Wallace",
    "Moreno",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Herrera",
    "Gibson",
    "Ellis",
    "Tran",
    "Medina",
    "Aguilar",
    "Stevens",
    "Murray",
    "Ford",
    "Castro",
    "Marshall",
    "Owens",
    "Harrison",
    "Fernandez",
    "Mcdonald",
    "Woods",
    "Washington",
    "Kennedy",
    "Wells",
    "Vargas",
    "Henry",
    "Chen",
    "Freeman",
    "Webb",
    "Tucker",
    "Guzman",
    "Burns",
    "Crawford",
    "Olson",
    "Simpson",
    "Porter",
    "Hunter",
    "Gordon",
    "Mendez",
    "Silva",
    "Shaw",
    "Snyder",
    "Mason",
    "Dixon",
    "Munoz",
    "Hunt",
    "Hicks",
    "Holmes",
    "Palmer",
    "Wagner",
    "Black",
    "Robertson",
    "Boyd",
    "Rose",
    "Stone",
    "Salazar",
    "Fox",
    "Warren",
    "Mills",
    "Meyer",
    "Rice",
    "Schmidt",
    "Garza",
    "Daniels",
    "Ferguson",
    "Nichols",
    "Stephens",
    "Soto",
    "Weaver",
    "Ryan",
    "Gardner",
    "Payne",
    "Grant",
]
ADJECTIVES = [
    "Blue",
    "Red",
    "Green",
    "Silver",
    "Golden",
    "Bright",
    "Swift",
    "Quiet",
    "Bold",
    "Clear",
    "North",
    "South",
    "East",
    "West",
    "Open",
    "Prime",
    "True",
    "Deep",
    "High",
    "Fast",
    "Smart",
    "Happy",
    "Lucky",
    "Solid",
    "Urban",
    "Rapid",
    "Noble",
    "Vivid",
    "Calm",
    "Wild",
    "Iron",
    "Cedar",
    "Maple",
    "Pine",
    "Oak",
    "Stellar",
    "Lunar",
    "Solar",
    "Polar",
    "Coral",
    "Amber",
    "Ivory",
    "Onyx",
    "Jade",
    "Ruby",
    "Sapphire",
    "Crimson",
    "Azure",
    "Indigo",
    "Scarlet",
    "Violet",
    "Hidden",
    "Modern",
    "Global",
    "Local",
    "Brave",
    "Keen",
    "Neat",
]
NOUNS = [
    "Harbor",
    "River",
    "Summit",
    "Valley",
    "Ridge",
    "Forge",
    "Works",
    "Labs",
    "Systems",
    "Dynamics",
    "Analytics",
    "Logic",
    "Cloud",
    "Data",
    "Bridge",
    "Gate",
    "Point",
    "Path",
    "Field",
    "Stone",
    "Wave",
    "Peak",
    "Grove",
    "Bay",
    "Creek",
    "Lake",
    "Falls",
    "Mesa",
    "Canyon",
    "Beacon",
    "Signal",
    "Vector",
    "Matrix",
    "Pixel",
    "Circuit",
    "Engine",
    "Rocket",
    "Orbit",
    "Comet",
    "Falcon",
    "Hawk",
    "Eagle",
    "Fox",
    "Wolf",
    "Bear",
    "Lion",
    "Tiger",
    "Otter",
    "Heron",
    "Crane",
    "Sparrow",
    "Robin",
    "Maple",
    "Birch",
    "Willow",
    "Aspen",
    "Spruce",
]
COMPANY_SUFFIXES = ["Inc", "LLC", "Ltd", "Co", "Group", "Corp"]
TLDS = [".com", ".io", ".co", ".net"]
PERSONAL_DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "hotmail.com",
]
AREA_CODES = np.array(
    [
        212,
        213,
        303,
        305,
        312,
        404,
        415,
        503,
        512,
        617,
        646,
        702,
        713,
        718,
        720,
        773,
        801,
        858,
        917,
        929,
    ]
)
TITLES = [
    "Software Engineer",
    "Senior Software Engineer",
    "Engineering Manager",
    "Data Analyst",
    "Data Engineer",
    "Product Manager",
    "Designer",
    "Account Executive",
    "Sales Manager",
    "Marketing Manager",
    "Head of Marketing",
    "CTO",
    "CEO",
    "COO",
    "VP Engineering",
    "VP Sales",
    "Customer Success Manager",
    "Support Engineer",
    "Operations Manager",
    "Founder",
]
INDUSTRIES = [
    "Software",
    "Retail",
    "Healthcare",
    "Finance",
    "Education",
    "Manufacturing",
    "Media",
    "Logistics",
    "Energy",
    "Hospitality",
    "Real Estate",
    "Telecommunications",
]
SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
PLANS = ["free", "starter", "pro", "enterprise"]
PLAN_PRICES = np.array([0.0, 29.0, 99.0, 499.0])
FEATURES = [
    "dashboard",
    "reports",
    "export",
    "alerts",
    "integrations",
    "api",
    "sharing",
    "search",
]
SUBJECTS = [
    "Cannot log in",
    "Invoice question",
    "Feature request",
    "Bug report",
    "Billing address change",
    "Export is slow",
    "How do I add a teammate?",
    "API rate limit",
    "Cancel subscription",
    "Password reset not arriving",
    "Integration broken",
    "Data looks wrong",
]
TICKET_STATUSES = ["open", "pending", "solved", "closed"]
INVOICE_STATUSES = ["paid", "open", "void"]

PRODUCT_EVENTS = ["page_view", "signup", "identify", "feature_used"]
_PAGE_VIEW, _SIGNUP, _IDENTIFY, _FEATURE = 0, 1, 2, 3

#: Raw tables written per batch, as ``<source>__<table>`` (the raw layer's naming).
TABLES = (
    "crm__contacts",
    "crm__companies",
    "billing__customers",
    "billing__invoices",
    "product__events",
    "support__tickets",
)

# -- spec and batch clock ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSpec:
    """What to generate. The same spec always yields the same data."""

    persons: int = 2000
    batches: int = 3
    seed: int = 42
    start: datetime = datetime(2024, 1, 1)
    #: Length of one batch's period; batch k covers [start + k*period, start + (k+1)*period).
    period: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if self.persons < 1:
            raise ValueError("persons must be at least 1")
        if self.batches < 1:
            raise ValueError("batches must be at least 1")
        if self.period < timedelta(hours=2):
            raise ValueError("period must be at least 2 hours (late rows arrive minutes early)")
        if self.period.total_seconds() != int(self.period.total_seconds()):
            raise ValueError("period must be a whole number of seconds")

    @property
    def companies(self) -> int:
        return max(3, self.persons // 10)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def batch_period(spec: DemoSpec, batch: int) -> tuple[datetime, datetime]:
    """[start, end) of the period whose rows batch ``batch`` delivers (naive UTC)."""
    _check_batch(spec, batch)
    start = _naive_utc(spec.start)
    return start + batch * spec.period, start + (batch + 1) * spec.period


def batch_times(spec: DemoSpec) -> list[datetime]:
    """Delivery time of each batch (the end of its period), naive UTC, one period apart."""
    return [batch_period(spec, k)[1] for k in range(spec.batches)]


def _check_batch(spec: DemoSpec, batch: int) -> None:
    if not 0 <= batch < spec.batches:
        raise ValueError(f"batch {batch} is outside 0..{spec.batches - 1}")


# -- small vectorised helpers ------------------------------------------------------------------


def _rng(spec: DemoSpec, *stream: Any) -> np.random.Generator:
    """An independent, reproducible stream per purpose (adding one never shifts another)."""
    return np.random.default_rng([spec.seed, *(zlib.crc32(str(s).encode()) for s in stream)])


_MASK48 = np.uint64((1 << 48) - 1)


def _scramble(values: np.ndarray, salt: int) -> np.ndarray:
    """A bijection on [0, 2**48): distinct inputs give distinct, random-looking ids."""
    x = values.astype(np.uint64) & _MASK48
    for mult in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F):
        x = (x * np.uint64(mult | 1) + np.uint64(salt)) & _MASK48
        x ^= x >> np.uint64(23)
    return x


_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _fixed_width(values: np.ndarray, width: int, base: int = 16) -> pa.Array:
    """Non-negative integers as zero-padded strings in ``base``, built without Python loops."""
    v = np.asarray(values).astype(np.uint64)
    out = np.empty((len(v), width), dtype=np.uint8)
    b = np.uint64(base)
    for i in range(width - 1, -1, -1):
        out[:, i] = _DIGITS[(v % b).astype(np.intp)]
        v = v // b
    offsets = np.arange(0, (len(v) + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(len(v), pa.py_buffer(offsets), pa.py_buffer(out.tobytes())).cast(
        pa.string()
    )


def _ids(prefix: str, values: np.ndarray, salt: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, _fixed_width(_scramble(values, salt), 12), "")


def _take(vocab: Sequence[str], idx: np.ndarray) -> pa.Array:
    return pa.array(vocab, pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _cat(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _i8(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int8))


def _where(mask: np.ndarray, if_true: Any, if_false: Any) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), if_true, if_false)


def _blank(values: pa.Array, r: np.random.Generator, p_null: float, p_empty: float) -> pa.Array:
    """Knock out some values: NULL for a fraction, empty string for another."""
    u = r.random(len(values))
    values = _where(u < p_null, pa.scalar(None, pa.string()), values)
    return _where((u >= p_null) & (u < p_null + p_empty), "", values)


def _messy_email(email: pa.Array, r: np.random.Generator) -> pa.Array:
    variant = r.choice(5, len(email), p=[0.55, 0.15, 0.1, 0.1, 0.1])
    title = pc.utf8_title(email)
    return pc.choose(
        _i8(variant),
        email,
        title,
        pc.utf8_upper(email),
        _cat(" ", email, "  "),
        _cat("  ", title, " "),
    )


def _messy_phone(digits: np.ndarray, r: np.random.Generator) -> pa.Array:
    """10-digit numbers in the forms people type them."""
    d = _fixed_width(digits, 10, base=10)
    area = pc.utf8_slice_codeunits(d, 0, 3)
    exch = pc.utf8_slice_codeunits(d, 3, 6)
    line = pc.utf8_slice_codeunits(d, 6, 10)
    variant = r.choice(6, len(d), p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    return pc.choose(
        _i8(variant),
        _cat("+1 (", area, ") ", exch, "-", line),
        _cat(area, ".", exch, ".", line),
        d,
        _cat("(", area, ") ", exch, "-", line),
        _cat("+1", d),
        _cat("1-", area, "-", exch, "-", line),
    )


def _messy_domain(domain: pa.Array, r: np.random.Generator) -> pa.Array:
    variant = r.choice(5, len(domain), p=[0.5, 0.2, 0.1, 0.1, 0.1])
    return pc.choose(
        _i8(variant),
        domain,
        _cat("www.", domain),
        pc.utf8_upper(domain),
        _cat("WWW.", pc.utf8_title(domain)),
        _cat(" www.", domain, " "),
    )


def _timestamps(base: np.datetime64, seconds: np.ndarray, unit: str = "s") -> pa.Array:
    """Naive timestamps ``base + seconds`` (``seconds`` may be fractional for unit 'ms')."""
    if unit == "ms":
        delta = np.round(np.asarray(seconds, dtype=np.float64) * 1000).astype("timedelta64[ms]")
        return pa.array(base.astype("datetime64[ms]") + delta)
    return pa.array(base + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]"))


def _iso_z(ts: pa.Array) -> pa.Array:
    return pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ")


def _later_batch(r: np.random.Generator, first: np.ndarray, batches: int) -> np.ndarray:
    """Uniform in [first, batches-1] per row."""
    return first + np.floor(r.random(len(first)) * (batches - first)).astype(np.int64)


def _repeat_index(counts: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


# -- the numeric world -------------------------------------------------------------------------


class _World:
    """All structural draws for one spec (numbers only; strings are built per batch)."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.B = spec.batches
        self.period_s = int(spec.period.total_seconds())
        self.t0 = np.datetime64(_naive_utc(spec.start), "s")
        self._companies()
        self._persons()
        self._crm()
        self._product()
        self._billing()
        self._support()

    # companies ---------------------------------------------------------------------------------
    def _companies(self) -> None:
        spec, B, m = self.spec, self.B, self.spec.companies
        r = _rng(spec, "companies")
        code = r.permutation(m)  # names: a bijection so every company has its own domain
        na, nn = len(ADJECTIVES), len(NOUNS)
        adj, noun, rep = code % na, (code // na) % nn, code // (na * nn)
        suffix = r.integers(0, len(COMPANY_SUFFIXES), m)
        tld = r.integers(0, len(TLDS), m)
        rep_s = _where(rep > 0, pc.cast(pa.array(rep), pa.string()), "")
        self.company_domain = _cat(
            pc.utf8_lower(_take(ADJECTIVES, adj)),
            pc.utf8_lower(_take(NOUNS, noun)),
            rep_s,
            _take(TLDS, tld),
        )
        self.company_name = _cat(
            _take(ADJECTIVES, adj),
            " ",
            _take(NOUNS, noun),
            _where(rep > 0, _cat(" ", rep_s), ""),
            " ",
            _take(COMPANY_SUFFIXES, suffix),
        )
        cidx = np.arange(m)
        area = AREA_CODES[r.integers(0, len(AREA_CODES), m)]
        # exchanges 100-199 are reserved for office lines, persons get 200-999: never equal
        self.office_phone = area * 10**7 + (100 + (cidx // 10000) % 100) * 10**4 + cidx % 10000
        #: the biggest companies (sizes are skewed to low indices) share one office line
        self.shared_phone = cidx < max(1, m // 1000)
        industry = r.integers(0, len(INDUSTRIES), m)
        size = r.integers(0, len(SIZES), m)
        batch = r.integers(0, B, m)
        created = r.integers(0, self.period_s - 1, m)
        again = (batch < B - 1) & (r.random(m) < 0.1)
        re_batch = batch + 1 + np.floor(r.random(m) * np.maximum(B - 1 - batch, 0)).astype(np.int64)
        re_time = r.integers(0, self.period_s - 1, m)
        sel = np.flatnonzero(again)
        self.co = {
            "company": np.concatenate([cidx, sel]),
            "batch": np.concatenate([batch, re_batch[sel]]),
            "industry": np.concatenate([industry, industry[sel]]),
            "size": np.concatenate([size, np.minimum(size[sel] + 1, len(SIZES) - 1)]),
            "updated": np.concatenate(
                [
                    batch * self.period_s + created,
                    re_batch[sel] * self.period_s + re_time[sel],
                ]
            ),
        }

    # persons -----------------------------------------------------------------------------------
    def _persons(self) -> None:
        spec, n, m = self.spec, self.spec.persons, self.spec.companies
        r = _rng(spec, "persons")
        self.n = n
        # skewed company sizes: company 0 is the biggest (about sqrt(1/m) of everyone)
        self.company = np.minimum((m * r.random(n) ** 2).astype(np.int64), m - 1)
        self.first = r.integers(0, len(FIRST_NAMES), n)
        self.last = r.integers(0, len(LAST_NAMES), n)
        area = AREA_CODES[r.integers(0, len(AREA_CODES), n)]
        code = r.permutation(n) % 8_000_000
        self.phone = area * 10**7 + (200 + code // 10000) * 10**4 + code % 10000
        self.personal_domain = r.integers(0, len(PERSONAL_DOMAINS), n)
        #: the account (product login, billing) uses the personal address
        self.account_personal = r.random(n) < 0.4
        #: CRM and support know the work address, except for these
        self.crm_personal = r.random(n) < 0.15
        self.support_personal = r.random(n) < 0.3
        self.title = r.integers(0, len(TITLES), n)
        self.plan = r.choice(len(PLANS), n, p=[0.4, 0.3, 0.2, 0.1])
        self.all_sources = r.random(n) < 0.1
        self.in_crm = self.all_sources | (r.random(n) < 0.7)
        self.in_product = self.all_sources | (r.random(n) < 0.7)
        self.identified = self.in_product & (self.all_sources | (r.random(n) < 0.7))
        self.in_billing = self.identified & (self.all_sources | (r.random(n) < 0.7))
        self.in_support = self.all_sources | (r.random(n) < 0.35)
        uses_office = self.shared_phone[self.company] & (r.random(n) < 0.6)
        #: the number CRM/support/billing know: the shared office line for some people
        self.known_phone = np.where(uses_office, self.office_phone[self.company], self.phone)
        self.crm_has_phone = r.random(n) < 0.7

    # crm contacts ------------------------------------------------------------------------------
    def _crm(self) -> None:
        r, B = _rng(self.spec, "crm"), self.B
        persons = np.flatnonzero(self.in_crm)
        k = len(persons)
        batch = r.integers(0, B, k)
        created = batch * self.period_s + r.integers(0, self.period_s - 1, k)
        again = (batch < B - 1) & (r.random(k) < 0.15)
        re_batch = batch + 1 + np.floor(r.random(k) * np.maximum(B - 1 - batch, 0)).astype(np.int64)
        re_time = re_batch * self.period_s + r.integers(0, self.period_s - 1, k)
        shift = r.integers(1, len(TITLES), k)
        sel = np.flatnonzero(again)
        self.contacts = {
            "contact": np.concatenate([np.arange(k), sel]),
            "person": np.concatenate([persons, persons[sel]]),
            "batch": np.concatenate([batch, re_batch[sel]]),
            "version": np.concatenate([np.zeros(k, np.int8), np.ones(len(sel), np.int8)]),
            "created": np.concatenate([created, created[sel]]),
            "updated": np.concatenate([created, re_time[sel]]),
            "title": np.concatenate(
                [
                    self.title[persons],
                    (self.title[persons[sel]] + shift[sel]) % len(TITLES),
                ]
            ),
        }

    # product events ----------------------------------------------------------------------------
    def _product(self) -> None:
        r, B = _rng(self.spec, "product"), self.B
        users = np.flatnonzero(self.in_product)
        u = len(users)
        two_devices = r.random(u) < 0.2
        first_seen = r.integers(0, B, u)
        second_seen = r.integers(0, B, u)
        ident = self.identified[users]
        # most people sign up the day they first visit; the rest come back later
        id_batch = np.where(r.random(u) < 0.6, first_seen, _later_batch(r, first_seen, B))
        second_id_batch = np.maximum(second_seen, id_batch)
        n_views = r.integers(1, 4, u)
        n_views2 = r.integers(1, 3, u) * two_devices
        n_features = r.integers(0, 5, u) * ident
        #: batch in which each person identifies (-1: never); billing signs them up then
        self.identify_batch = np.full(self.n, -1, dtype=np.int64)
        self.identify_batch[users[ident]] = id_batch[ident]

        segments = []  # (user index, kind, device, batch)

        def add(rows: np.ndarray, kind: int, device: int, batch: np.ndarray) -> None:
            segments.append(
                (
                    rows,
                    np.full(len(rows), kind, np.int8),
                    np.full(len(rows), device, np.int8),
                    batch,
                )
            )

        rows = _repeat_index(n_views)
        add(rows, _PAGE_VIEW, 0, first_seen[rows])
        rows = _repeat_index(n_views2)
        add(rows, _PAGE_VIEW, 1, second_seen[rows])
        rows = np.flatnonzero(ident)
        add(rows, _SIGNUP, 0, id_batch[rows])
        add(rows, _IDENTIFY, 0, id_batch[rows])
        rows = np.flatnonzero(ident & two_devices)
        add(rows, _IDENTIFY, 1, second_id_batch[rows])
        rows = _repeat_index(n_features)
        add(rows, _FEATURE, 0, _later_batch(r, id_batch[rows], B))
        user_idx = np.concatenate([s[0] for s in segments])
        self.events = {
            "event": np.arange(len(user_idx)),
            "person": users[user_idx],
            "kind": np.concatenate([s[1] for s in segments]),
            "device": np.concatenate([s[2] for s in segments]),
            "batch": np.concatenate([s[3] for s in segments]),
        }

    # billing -----------------------------------------------------------------------------------
    def _late_and_pinned(self, r: np.random.Generator, batch: np.ndarray, synced: np.ndarray) -> np.ndarray:
        """Make a few rows of every batch k >= 1 late; pin each batch's max synced_at; return late."""
        P, B = self.period_s, self.B
        late = (batch >= 1) & (r.random(len(batch)) < 0.03)
        for k in range(1, B):  # at least one late row per batch when the batch has two rows
            in_k = np.flatnonzero(batch == k)
            if len(in_k) >= 2 and not late[in_k].any():
                late[in_k[0]] = True
        synced[late] = batch[late] * P - r.integers(120, 480, int(late.sum()))
        for k in range(B):
            on_time = np.flatnonzero((batch == k) & ~late)
            if len(on_time):
                synced[on_time[np.argmax(synced[on_time])]] = (k + 1) * P - 1
        return late

    def _billing(self) -> None:
        r, B, P = _rng(self.spec, "billing"), self.B, self.period_s
        persons = np.flatnonzero(self.in_billing)
        k = len(persons)
        batch = _later_batch(r, np.maximum(self.identify_batch[persons], 0), B)
        batch = np.where(r.random(k) < 0.7, np.maximum(self.identify_batch[persons], 0), batch)
        created = batch * P + r.integers(0, P - 3600, k)
        delay = r.integers(60, 1800, k)
        plan = self.plan[persons]
        upgrade = (batch < B - 1) & (plan < len(PLANS) - 1) & (r.random(k) < 0.1)
        re_batch = batch + 1 + np.floor(r.random(k) * np.maximum(B - 1 - batch, 0)).astype(np.int64)
        re_synced = re_batch * P + r.integers(0, P - 1, k)
        has_phone = r.random(k) < 0.5
        sel = np.flatnonzero(upgrade)
        c_batch = np.concatenate([batch, re_batch[sel]])
        c_synced = np.concatenate([created + delay, re_synced[sel]])
        c_created = np.concatenate([created, created[sel]])
        late = self._late_and_pinned(r, c_batch, c_synced)
        c_created = np.where(
            late & (np.arange(len(c_batch)) < k),
            c_synced - np.concatenate([delay, delay[sel]]),
            c_created,
        )
        # a re-synced row keeps the original created_at
        c_created[k:] = c_created[sel]
        self.customers = {
            "customer": np.concatenate([np.arange(k), sel]),
            "person": np.concatenate([persons, persons[sel]]),
            "batch": c_batch,
            "plan": np.concatenate([plan, plan[sel] + 1]),
            "created": c_created,
            "synced": c_synced,
            "has_phone": np.concatenate([has_phone, has_phone[sel]]),
        }
        # invoices: paid plans only, 1-3 per customer, from the customer's batch on
        paying = np.flatnonzero(plan > 0)
        currency = r.random(k) < 0.1  # True: EUR
        n_inv = r.integers(1, 4, len(paying))
        cust = paying[_repeat_index(n_inv)]
        i_batch = _later_batch(r, batch[cust], B)
        i_synced = i_batch * P + r.integers(0, P - 1, len(cust))
        i_synced = np.maximum(i_synced, c_synced[cust])  # never before the customer exists
        i_synced = np.minimum(i_synced, (i_batch + 1) * P - 2)
        self._late_and_pinned(r, i_batch, i_synced)
        self.invoices = {
            "invoice": np.arange(len(cust)),
            "customer": cust,
            "person": persons[cust],
            "batch": i_batch,
            "synced": i_synced,
            "issued": i_synced - r.integers(0, 3600, len(cust)),
            "amount": PLAN_PRICES[plan[cust]] * np.where(r.random(len(cust)) < 0.1, 0.5, 1.0),
            "eur": currency[cust],
            "status": r.choice(len(INVOICE_STATUSES), len(cust), p=[0.8, 0.15, 0.05]),
        }

    # support -----------------------------------------------------------------------------------
    def _support(self) -> None:
        r, B = _rng(self.spec, "support"), self.B
        persons = np.flatnonzero(self.in_support)
        n_t = r.integers(1, 4, len(persons))
        who = persons[_repeat_index(n_t)]
        self.tickets = {
            "ticket": np.arange(len(who)),
            "person": who,
            "batch": r.integers(0, B, len(who)),
        }


@functools.lru_cache(maxsize=1)
def _world(spec: DemoSpec) -> _World:
    return _World(spec)


# -- strings for one batch ---------------------------------------------------------------------

_SALT = {
    "contact": 11,
    "company": 12,
    "customer": 21,
    "invoice": 22,
    "user": 31,
    "anon": 32,
    "event": 33,
    "ticket": 41,
}


def _contact_ids(w: _World, contact: np.ndarray) -> pa.Array:
    return _ids("003", contact, _SALT["contact"])


def _company_ids(w: _World, company: np.ndarray) -> pa.Array:
    return _ids("001", company, _SALT["company"])


def _customer_ids(customer: np.ndarray) -> pa.Array:
    return _ids("cus_", customer, _SALT["customer"])


def _user_ids(person: np.ndarray) -> pa.Array:
    return _ids("usr_", person, _SALT["user"])


def _anonymous_ids(person: np.ndarray, device: np.ndarray) -> pa.Array:
    return _ids("anon-", person.astype(np.int64) * 2 + device, _SALT["anon"])


def _event_ids(event: np.ndarray) -> pa.Array:
    return _ids("evt_", event, _SALT["event"])


def _ticket_ids(ticket: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise("T-", pc.cast(pa.array(100000 + ticket), pa.string()), "")


def _emails(w: _World, person: np.ndarray, personal: np.ndarray) -> pa.Array:
    """The canonical (clean, lower-case) address of each person, work or personal."""
    first = pc.utf8_lower(_take(FIRST_NAMES, w.first[person]))
    last = pc.utf8_lower(_take(LAST_NAMES, w.last[person]))
    num = pc.cast(pa.array(person), pa.string())
    work = _cat(first, ".", last, num, "@", w.company_domain.take(pa.array(w.company[person])))
    private = _cat(first, last, num, "@", _take(PERSONAL_DOMAINS, w.personal_domain[person]))
    return _where(personal, private, work)


def _placeholders(
    email: pa.Array,
    domain: pa.Array,
    r: np.random.Generator,
    p_test: float,
    p_noreply: float,
) -> pa.Array:
    u = r.random(len(email))
    email = _where(u < p_test, "test@example.com", email)
    return _where((u >= p_test) & (u < p_test + p_noreply), _cat("noreply@", domain), email)


def _full_names(w: _World, person: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array]:
    first = _take(FIRST_NAMES, w.first[person])
    last = _take(LAST_NAMES, w.last[person])
    return first, last, _cat(first, " ", last)


def _crm_contacts(w: _World, batch: int, c: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    p = c["person"]
    first, last, _ = _full_names(w, p)
    domain = w.company_domain.take(pa.array(w.company[p]))
    email = _placeholders(_messy_email(_emails(w, p, w.crm_personal[p]), r), domain, r, 0.02, 0.01)
    phone = _messy_phone(w.known_phone[p], r)
    phone = _where(w.crm_has_phone[p] | (c["version"] == 1), phone, "")
    company_id = _blank(_company_ids(w, w.company[p]), r, 0.0, 0.05)
    return pa.table(
        {
            "contact_id": _contact_ids(w, c["contact"]),
            "first_name": first,
            "last_name": _where(r.random(len(p)) < 0.05, pc.utf8_upper(last), last),
            "email": _blank(email, r, 0.0, 0.03),
            "phone": phone,
            "company_id": company_id,
            "title": _blank(_take(TITLES, c["title"]), r, 0.0, 0.05),
            "created_at": _iso_z(_timestamps(w.t0, c["created"])),
            "updated_at": _iso_z(_timestamps(w.t0, c["updated"])),
        }
    )


def _crm_companies(w: _World, batch: int, c: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    ci = pa.array(c["company"])
    return pa.table(
        {
            "company_id": _company_ids(w, c["company"]),
            "name": w.company_name.take(ci),
            "domain": _blank(_messy_domain(w.company_domain.take(ci), r), r, 0.0, 0.03),
            "industry": _blank(_take(INDUSTRIES, c["industry"]), r, 0.0, 0.05),
            "size": _take(SIZES, c["size"]),
            "phone": _messy_phone(w.office_phone[c["company"]], r),
            "updated_at": _iso_z(_timestamps(w.t0, c["updated"])),
        }
    )


def _billing_customers(w: _World, batch: int, c: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    p = c["person"]
    domain = w.company_domain.take(pa.array(w.company[p]))
    email = _placeholders(_messy_email(_emails(w, p, w.account_personal[p]), r), domain, r, 0.02, 0.0)
    _, _, full = _full_names(w, p)
    # personal accounts often leave the company fields empty
    no_company = w.account_personal[p] & (r.random(len(p)) < 0.5)
    company_name = _where(no_company, "", w.company_name.take(pa.array(w.company[p])))
    company_domain = _where(no_company, pa.scalar(None, pa.string()), _messy_domain(domain, r))
    phone = _where(c["has_phone"], _messy_phone(w.known_phone[p], r), pa.scalar(None, pa.string()))
    return pa.table(
        {
            "customer_id": _customer_ids(c["customer"]),
            "email": _blank(email, r, 0.0, 0.02),
            "full_name": _where(r.random(len(p)) < 0.1, pc.utf8_upper(full), full),
            "company_name": company_name,
            "company_domain": company_domain,
            "phone": _blank(phone, r, 0.0, 0.05),
            "plan": _take(PLANS, c["plan"]),
            "created_at": _timestamps(w.t0, c["created"]),
            "synced_at": _timestamps(w.t0, c["synced"]),
        }
    )


def _billing_invoices(w: _World, batch: int, c: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    return pa.table(
        {
            "invoice_id": _ids("in_", c["invoice"], _SALT["invoice"]),
            "customer_id": _customer_ids(c["customer"]),
            "amount": pa.array(c["amount"], pa.float64()),
            "currency": _where(c["eur"], "EUR", "USD"),
            "status": _take(INVOICE_STATUSES, c["status"]),
            "issued_at": _timestamps(w.t0, c["issued"]),
            "synced_at": _timestamps(w.t0, c["synced"]),
        }
    )


def _product_events(w: _World, batch: int, e: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    p, kind, n = e["person"], e["kind"], len(e["person"])
    # within a day: anonymous browsing first, then sign-up and identify, then feature use
    lo = np.array([0.0, 0.5, 0.6, 0.7])[kind]
    hi = np.array([0.5, 0.6, 0.7, 1.0])[kind]
    secs = batch * w.period_s + (lo + (hi - lo) * r.random(n)) * (w.period_s - 1)
    known = kind != _PAGE_VIEW
    null = pa.scalar(None, pa.string())
    email = _messy_email(_emails(w, p, w.account_personal[p]), r)
    feature = _take(FEATURES, r.integers(0, len(FEATURES), n))
    return pa.table(
        {
            "event_id": _event_ids(e["event"]),
            "anonymous_id": _anonymous_ids(p, e["device"]),
            "user_id": _where(known, _user_ids(p), null),
            "email": _where(kind == _IDENTIFY, email, null),
            "event": _take(PRODUCT_EVENTS, kind),
            "feature": _where(kind == _FEATURE, feature, null),
            "timestamp": pc.strftime(_timestamps(w.t0, secs, "ms"), format="%Y-%m-%dT%H:%M:%SZ"),
            "plan": _where(known & (kind != _SIGNUP), _take(PLANS, w.plan[p]), null),
        }
    )


def _support_tickets(w: _World, batch: int, t: dict[str, np.ndarray], r: np.random.Generator) -> pa.Table:
    p, n = t["person"], len(t["person"])
    domain = w.company_domain.take(pa.array(w.company[p]))
    email = _messy_email(_emails(w, p, w.support_personal[p]), r)
    email = _blank(_placeholders(email, domain, r, 0.01, 0.03), r, 0.05, 0.05)
    phone = _where(
        r.random(n) < 0.4,
        _messy_phone(w.known_phone[p], r),
        pa.scalar(None, pa.string()),
    )
    first, last, full = _full_names(w, p)
    name = pc.choose(
        _i8(r.choice(4, n, p=[0.6, 0.15, 0.15, 0.1])),
        full,
        pc.utf8_lower(full),
        _cat(last, ", ", first),
        first,
    )
    org = _where(
        w.support_personal[p] & (r.random(n) < 0.7),
        pa.scalar(None, pa.string()),
        _messy_domain(domain, r),
    )
    return pa.table(
        {
            "ticket_id": _ticket_ids(t["ticket"]),
            "requester_email": email,
            "requester_phone": _blank(phone, r, 0.0, 0.1),
            "requester_name": name,
            "org_domain": _blank(org, r, 0.0, 0.05),
            "subject": _take(SUBJECTS, r.integers(0, len(SUBJECTS), n)),
            "status": _take(TICKET_STATUSES, r.integers(0, len(TICKET_STATUSES), n)),
            "created_at": _timestamps(w.t0, batch * w.period_s + r.integers(0, w.period_s - 1, n)),
        }
    )


#: raw table -> (builder, the world's row table it slices)
BUILDERS = {
    "crm__contacts": (_crm_contacts, "contacts"),
    "crm__companies": (_crm_companies, "co"),
    "billing__customers": (_billing_customers, "customers"),
    "billing__invoices": (_billing_invoices, "invoices"),
    "product__events": (_product_events, "events"),
    "support__tickets": (_support_tickets, "tickets"),
}

#: Rows turned into strings at a time; bounds memory whatever the batch size. Part of the
#: output's definition (each chunk has its own random stream), so changing it changes the data.
CHUNK_ROWS = 200_000


def _chunks(w: _World, name: str, batch: int) -> Iterator[pa.Table]:
    """The rows ``name`` receives in ``batch``, as Arrow tables of at most CHUNK_ROWS rows."""
    build, attr = BUILDERS[name]
    table = getattr(w, attr)
    idx = np.flatnonzero(table["batch"] == batch)
    for number, start in enumerate(range(0, max(len(idx), 1), CHUNK_ROWS)):
        part = idx[start : start + CHUNK_ROWS]
        rows = {k: v[part] for k, v in table.items()}
        yield build(w, batch, rows, _rng(w.spec, name, batch, number))


def batch_tables(spec: DemoSpec, batch: int) -> dict[str, pa.Table]:
    """The rows each raw table receives in ``batch``, as Arrow tables (nothing is written)."""
    _check_batch(spec, batch)
    w = _world(spec)
    return {name: pa.concat_tables(list(_chunks(w, name, batch))) for name in BUILDERS}


# -- writing -----------------------------------------------------------------------------------


def _file(data_dir: Path, source: str, stem: str, batch: int, ext: str) -> Path:
    folder = data_dir / source
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}_{batch:04d}.{ext}"


def _replace_into(path: Path, write: Any) -> None:
    """Write to a temporary name the globs do not match, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_csv(chunks: Iterator[pa.Table], path: Path) -> int:
    options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = None
        for chunk in chunks:
            if writer is None:
                writer = pacsv.CSVWriter(str(tmp), chunk.schema, write_options=options)
            writer.write_table(chunk)
            rows += chunk.num_rows
        assert writer is not None
        writer.close()

    _replace_into(path, write)
    return rows


def _write_parquet(chunks: Iterator[pa.Table], path: Path) -> int:
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = None
        for chunk in chunks:
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), chunk.schema)
            writer.write_table(chunk)
            rows += chunk.num_rows
        assert writer is not None
        writer.close()

    _replace_into(path, write)
    return rows


def _write_ndjson(chunks: Iterator[pa.Table], path: Path) -> int:
    """NDJSON through DuckDB's JSON writer, chunk by chunk; no file when there are no rows."""
    import duckdb

    rows = 0
    part = path.with_name(f".{path.name}.part")

    def write(tmp: Path) -> None:
        nonlocal rows
        con = duckdb.connect()
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    if not chunk.num_rows:
                        continue
                    con.register("_rows", chunk)
                    con.execute(f"COPY _rows TO '{_sql_path(part)}' (FORMAT JSON)")
                    con.unregister("_rows")
                    with open(part, "rb") as src:
                        while block := src.read(1 << 22):
                            out.write(block)
                    rows += chunk.num_rows
        finally:
            con.close()
            part.unlink(missing_ok=True)

    _replace_into(path, write)
    if rows == 0:
        path.unlink()
    return rows


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


_LANDING_DDL = {
    "billing_customers": (
        "customer_id VARCHAR, email VARCHAR, full_name VARCHAR, company_name VARCHAR, "
        "company_domain VARCHAR, phone VARCHAR, plan VARCHAR, created_at TIMESTAMP, synced_at TIMESTAMP"
    ),
    "billing_invoices": (
        "invoice_id VARCHAR, customer_id VARCHAR, amount DOUBLE, currency VARCHAR, status VARCHAR, "
        "issued_at TIMESTAMP, synced_at TIMESTAMP"
    ),
}
_LANDING_KEYS = {"billing_customers": "customer_id", "billing_invoices": "invoice_id"}


def _land(duckdb_path: Path, tables: dict[str, Iterator[pa.Table]]) -> dict[str, int]:
    """Append rows to landing.* as an ingestion tool would, in one transaction.

    Writing a batch again replaces its own rows (same key and synced_at), so it is idempotent.
    """
    import duckdb

    Path(duckdb_path).parent.mkdir(parents=True, exist_ok=True)
    counts = {}
    con = duckdb.connect(str(duckdb_path))
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE SCHEMA IF NOT EXISTS landing")
        for name, chunks in tables.items():
            key = _LANDING_KEYS[name]
            con.execute(f"CREATE TABLE IF NOT EXISTS landing.{name} ({_LANDING_DDL[name]})")
            counts[name] = 0
            for chunk in chunks:
                columns = ", ".join(chunk.column_names)
                con.register("_batch_rows", chunk)
                con.execute(
                    f"DELETE FROM landing.{name} WHERE ({key}, synced_at) IN (SELECT {key}, synced_at FROM _batch_rows)"
                )
                con.execute(f"INSERT INTO landing.{name} ({columns}) SELECT {columns} FROM _batch_rows")
                con.unregister("_batch_rows")
                counts[name] += chunk.num_rows
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return counts


def _land_postgres(uri: str, tables: dict[str, Iterator[pa.Table]]) -> dict[str, int]:
    """The same landing tables on a PostgreSQL server (COPY into a temp table, then swap in)."""
    import psycopg

    counts = {}
    with psycopg.connect(uri) as con, con.transaction():
        con.execute("CREATE SCHEMA IF NOT EXISTS landing")
        for name, chunks in tables.items():
            key = _LANDING_KEYS[name]
            ddl = _LANDING_DDL[name].replace(" DOUBLE", " DOUBLE PRECISION")
            con.execute(f"CREATE TABLE IF NOT EXISTS landing.{name} ({ddl})")
            counts[name] = 0
            for chunk in chunks:
                columns = ", ".join(chunk.column_names)
                con.execute(f"CREATE TEMP TABLE IF NOT EXISTS _batch_{name} ({ddl}) ON COMMIT DROP")
                con.execute(f"TRUNCATE _batch_{name}")
                with con.cursor().copy(f"COPY _batch_{name} ({columns}) FROM STDIN") as copy:
                    for row in zip(*(chunk.column(c).to_pylist() for c in chunk.column_names), strict=True):
                        copy.write_row(row)
                con.execute(
                    f"DELETE FROM landing.{name} WHERE ({key}, synced_at) IN (SELECT {key}, synced_at FROM _batch_{name})"
                )
                con.execute(f"INSERT INTO landing.{name} ({columns}) SELECT {columns} FROM _batch_{name}")
                counts[name] += chunk.num_rows
    return counts


@dataclass(frozen=True)
class WarehouseConnection:
    """Land the billing rows through an Airflow connection (any dialect that can stage files)."""

    conn_id: str


def _land_warehouse(conn_id: str, tables: dict[str, Iterator[pa.Table]]) -> dict[str, int]:
    """The same landing tables through Nexus's own warehouse session (Snowflake, BigQuery, ...).

    Rows travel as text in a Parquet file staged by the dialect (write_pandas, load job, COPY),
    then one transaction replaces the batch's own rows, so landing a batch again is idempotent.
    """
    import tempfile

    from airflow_provider_nexus.warehouse import Warehouse

    counts: dict[str, int] = {}
    with Warehouse.open(conn_id) as wh, tempfile.TemporaryDirectory(prefix="nexus_landing_") as tmp:
        d = wh.dialect
        sql_types = {"VARCHAR": d.text_type, "TIMESTAMP": d.timestamp_type, "DOUBLE": d.double_type}
        wh.ensure_schema("landing")
        staged: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        for name, chunks in tables.items():
            columns = [tuple(part.split()) for part in _LANDING_DDL[name].split(", ")]
            typed = [(col, sql_types[kind]) for col, kind in columns]
            ddl = ", ".join(f"{d.quote(col)} {kind}" for col, kind in typed)
            wh.execute(f"CREATE TABLE IF NOT EXISTS {d.table('landing', name)} ({ddl})")
            rows = pa.concat_tables(list(chunks))
            text = pa.table({col: pc.cast(rows.column(col), pa.string()) for col, _ in typed})
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(text, path)
            stage = f"_nexus_landing_{name}"
            d.stage_files(wh, stage, [str(path)], "parquet", "_landing_file")
            staged[name] = (stage, typed)
            counts[name] = rows.num_rows
        with wh.transaction():  # only DML here: DDL auto-commits on some warehouses
            for name, (stage, typed) in staged.items():
                target, s = d.table("landing", name), d.quote(stage)
                key, synced = d.quote(_LANDING_KEYS[name]), d.quote("synced_at")
                delete, t = d.delete_target(target, "t")
                wh.execute(
                    f"{delete} WHERE EXISTS (SELECT 1 FROM {s} b WHERE b.{key} = {t}.{key} "
                    f"AND {d.cast_timestamp(f'b.{synced}')} = {t}.{synced})"
                )
                cols = ", ".join(d.quote(col) for col, _ in typed)
                values = ", ".join(f"CAST({d.quote(col)} AS {kind})" for col, kind in typed)
                wh.execute(f"INSERT INTO {target} ({cols}) SELECT {values} FROM {s}")
    return counts


def write_batch(
    spec: DemoSpec, batch: int, data_dir: Path, landing: Path | str | WarehouseConnection | None
) -> dict[str, int]:
    """Write the rows delivered in ``batch`` and return the number of rows per raw table.

    Files under ``data_dir``: ``crm/contacts_NNNN.csv``, ``crm/companies_NNNN.csv``,
    ``product/events_NNNN.ndjson`` (not written when the batch has no events) and
    ``support/tickets_NNNN.parquet``, NNNN = batch. Billing rows are appended to
    ``landing.billing_customers`` / ``landing.billing_invoices`` in ``landing``: a DuckDB file, a
    PostgreSQL URI or a ``WarehouseConnection`` (skipped, and left out of the counts, when None). Files appear atomically (written under a hidden
    temporary name, then renamed).
    """
    _check_batch(spec, batch)
    data_dir = Path(data_dir)
    w = _world(spec)
    counts = {
        "crm__contacts": _write_csv(
            _chunks(w, "crm__contacts", batch),
            _file(data_dir, "crm", "contacts", batch, "csv"),
        ),
        "crm__companies": _write_csv(
            _chunks(w, "crm__companies", batch),
            _file(data_dir, "crm", "companies", batch, "csv"),
        ),
    }
    if landing is not None:
        rows = {
            "billing_customers": _chunks(w, "billing__customers", batch),
            "billing_invoices": _chunks(w, "billing__invoices", batch),
        }
        if isinstance(landing, WarehouseConnection):
            landed = _land_warehouse(landing.conn_id, rows)
        elif str(landing).startswith(("postgresql://", "postgres://")):
            landed = _land_postgres(str(landing), rows)
        else:
            landed = _land(Path(landing), rows)
        counts["billing__customers"] = landed["billing_customers"]
        counts["billing__invoices"] = landed["billing_invoices"]
    counts["product__events"] = _write_ndjson(
        _chunks(w, "product__events", batch),
        _file(data_dir, "product", "events", batch, "ndjson"),
    )
    counts["support__tickets"] = _write_parquet(
        _chunks(w, "support__tickets", batch),
        _file(data_dir, "support", "tickets", batch, "parquet"),
    )
    return counts


def write_all(spec: DemoSpec, data_dir: Path, landing: Path | str | WarehouseConnection | None) -> dict[str, int]:
    """Write every batch in order; return total rows per raw table."""
    totals: dict[str, int] = {}
    for batch in range(spec.batches):
        for name, rows in write_batch(spec, batch, data_dir, landing).items():
            totals[name] = totals.get(name, 0) + rows
    return totals


# -- ground truth ------------------------------------------------------------------------------


def ground_truth(spec: DemoSpec) -> dict[str, pa.Table]:
    """Which synthetic person (or company) each source row describes.

    ``persons``: person, company, all_sources; ``crm__contacts``: contact_id, person;
    ``crm__companies``: company_id, company, domain (canonical); ``billing__customers``:
    customer_id, person; ``product__users``: user_id, anonymous_id, person (one row per device);
    ``support__tickets``: ticket_id, person.
    """
    w = _world(spec)
    contacts = np.arange(int(w.in_crm.sum()))
    m = spec.companies
    ev = w.events
    devices = np.unique(ev["person"].astype(np.int64) * 2 + ev["device"])
    dev_person = devices // 2
    identified = w.identified[dev_person]
    return {
        "persons": pa.table(
            {
                "person": np.arange(w.n),
                "company": w.company,
                "all_sources": w.all_sources,
            }
        ),
        "crm__contacts": pa.table(
            {
                "contact_id": _contact_ids(w, contacts),
                "person": np.flatnonzero(w.in_crm),
            }
        ),
        "crm__companies": pa.table(
            {
                "company_id": _company_ids(w, np.arange(m)),
                "company": np.arange(m),
                "domain": w.company_domain,
            }
        ),
        "billing__customers": pa.table(
            {
                "customer_id": _customer_ids(np.arange(int(w.in_billing.sum()))),
                "person": np.flatnonzero(w.in_billing),
            }
        ),
        "product__users": pa.table(
            {
                "user_id": _where(identified, _user_ids(dev_person), pa.scalar(None, pa.string())),
                "anonymous_id": _anonymous_ids(dev_person, devices % 2),
                "person": dev_person,
            }
        ),
        "support__tickets": pa.table(
            {
                "ticket_id": _ticket_ids(w.tickets["ticket"]),
                "person": w.tickets["person"],
            }
        ),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m airflow_provider_nexus.demo.generator DATA_DIR [DUCKDB] [--persons N] ...``"""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Write the Nexus demo's raw data.")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("duckdb_path", type=Path, nargs="?")
    parser.add_argument("--persons", type=int, default=DemoSpec.persons)
    parser.add_argument("--batches", type=int, default=DemoSpec.batches)
    parser.add_argument("--seed", type=int, default=DemoSpec.seed)
    parser.add_argument("--batch", type=int, help="write only this batch (0-based)")
    args = parser.parse_args(argv)
    spec = DemoSpec(persons=args.persons, batches=args.batches, seed=args.seed)
    began = time.perf_counter()
    if args.batch is None:
        counts = write_all(spec, args.data_dir, args.duckdb_path)
    else:
        counts = write_batch(spec, args.batch, args.data_dir, args.duckdb_path)
    for name, rows in counts.items():
        print(f"{name:<20} {rows:>10}")
    print(f"done in {time.perf_counter() - began:.1f}s")


if __name__ == "__main__":
    main()
