"""Fake but plausible platform customers: names, emails, phones and street addresses by country."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from sandbox.model import Customer

# Where the platform's customers live; weights are shares of orders.
COUNTRY_WEIGHTS: dict[str, int] = {
    "GB": 34,
    "US": 24,
    "DE": 8,
    "IE": 6,
    "AU": 6,
    "CA": 6,
    "NL": 5,
    "FR": 4,
    "ES": 3,
    "IT": 3,
    "SE": 1,
}


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated names as a tuple."""
    return tuple(text.split())


_ENGLISH_FIRST = _words(
    "Olivia Amelia Isla Ava Emily Sophie Grace Mia Poppy Ella Lily Evie Chloe Ruby Sienna Freya "
    "Jessica Hannah Oliver George Harry Jack Jacob Noah Charlie Thomas Oscar William James Leo Alfie "
    "Joshua Daniel Liam Ethan Siobhan Aoife Niamh Ciara Sean Conor Padraig Priya Aisha Mohammed Omar "
    "Wei Mei Kwame Zara"
)
_ENGLISH_LAST = _words(
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker "
    "White Roberts Green Hall Wood Jackson Clarke Patel Khan Murphy Kelly O'Brien Byrne Ryan Walsh "
    "O'Connor McCarthy Nguyen Garcia Miller Davis Rodriguez Martinez Anderson Lee Harris Clark Lewis "
    "Young King Scott Baker Adams Campbell"
)
_GERMAN_FIRST = _words(
    "Lukas Leon Finn Jonas Felix Maximilian Emma Mia Hannah Lena Lea Anna Sophie Jürgen Käthe"
)
_GERMAN_LAST = _words(
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch"
)
_DUTCH_FIRST = _words("Daan Sem Lucas Levi Bram Sanne Femke Lotte Fleur Eva Julia Noor")
_DUTCH_LAST = (
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
)
_FRENCH_FIRST = _words("Gabriel Louis Raphaël Jules Adam Hugo Chloé Léa Manon Camille Inès Zoé")
_FRENCH_LAST = _words("Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Lefèvre Girard")
_SPANISH_FIRST = _words("Hugo Martín Lucas Mateo Alejandro José Lucía Sofía María Paula Martina Carmen")
_SPANISH_LAST = _words("García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Ruiz")
_ITALIAN_FIRST = _words(
    "Leonardo Francesco Alessandro Lorenzo Matteo Giulia Sofia Aurora Alice Ginevra Chiara"
)
_ITALIAN_LAST = _words("Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno")
_SWEDISH_FIRST = _words("William Liam Noah Hugo Lucas Alice Maja Elsa Astrid Wilma Ebba Åsa")
_SWEDISH_LAST = _words(
    "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Lindqvist"
)

_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "DE": (_GERMAN_FIRST, _GERMAN_LAST),
    "NL": (_DUTCH_FIRST, _DUTCH_LAST),
    "FR": (_FRENCH_FIRST, _FRENCH_LAST),
    "ES": (_SPANISH_FIRST, _SPANISH_LAST),
    "IT": (_ITALIAN_FIRST, _ITALIAN_LAST),
    "SE": (_SWEDISH_FIRST, _SWEDISH_LAST),
}

_EMAIL_DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "inbox.example.org",
    "post.example.net",
)


@dataclass(frozen=True)
class _Place:
    city: str
    state: str
    postcode_prefix: str


# A few real cities per country with a matching region and postcode prefix; the rest of a postcode is random.
_PLACES: dict[str, tuple[_Place, ...]] = {
    "GB": (
        _Place("London", "Greater London", "SW"),
        _Place("London", "Greater London", "N"),
        _Place("London", "Greater London", "E"),
        _Place("Manchester", "Greater Manchester", "M"),
        _Place("Leeds", "West Yorkshire", "LS"),
        _Place("Bristol", "Bristol", "BS"),
        _Place("Birmingham", "West Midlands", "B"),
        _Place("Edinburgh", "Midlothian", "EH"),
        _Place("Glasgow", "Lanarkshire", "G"),
        _Place("Cardiff", "South Glamorgan", "CF"),
        _Place("Brighton", "East Sussex", "BN"),
        _Place("Oxford", "Oxfordshire", "OX"),
    ),
    "US": (
        _Place("New York", "NY", "100"),
        _Place("Brooklyn", "NY", "112"),
        _Place("San Francisco", "CA", "941"),
        _Place("Los Angeles", "CA", "900"),
        _Place("Austin", "TX", "787"),
        _Place("Seattle", "WA", "981"),
        _Place("Chicago", "IL", "606"),
        _Place("Boston", "MA", "021"),
        _Place("Denver", "CO", "802"),
        _Place("Miami", "FL", "331"),
    ),
    "DE": (
        _Place("Berlin", "Berlin", "10"),
        _Place("München", "Bayern", "80"),
        _Place("Hamburg", "Hamburg", "20"),
        _Place("Köln", "Nordrhein-Westfalen", "50"),
        _Place("Frankfurt am Main", "Hessen", "60"),
    ),
    "IE": (
        _Place("Dublin", "County Dublin", "D0"),
        _Place("Cork", "County Cork", "T12"),
        _Place("Galway", "County Galway", "H91"),
        _Place("Limerick", "County Limerick", "V94"),
    ),
    "AU": (
        _Place("Sydney", "NSW", "20"),
        _Place("Melbourne", "VIC", "30"),
        _Place("Brisbane", "QLD", "40"),
        _Place("Perth", "WA", "60"),
    ),
    "CA": (
        _Place("Toronto", "ON", "M5"),
        _Place("Vancouver", "BC", "V6"),
        _Place("Montréal", "QC", "H2"),
        _Place("Calgary", "AB", "T2"),
    ),
    "NL": (
        _Place("Amsterdam", "Noord-Holland", "10"),
        _Place("Rotterdam", "Zuid-Holland", "30"),
        _Place("Utrecht", "Utrecht", "35"),
    ),
    "FR": (
        _Place("Paris", "Île-de-France", "750"),
        _Place("Lyon", "Auvergne-Rhône-Alpes", "690"),
        _Place("Marseille", "Provence-Alpes-Côte d'Azur", "130"),
    ),
    "ES": (_Place("Madrid", "Comunidad de Madrid", "280"), _Place("Barcelona", "Cataluña", "080")),
    "IT": (
        _Place("Milano", "Lombardia", "201"),
        _Place("Roma", "Lazio", "001"),
        _Place("Bologna", "Emilia-Romagna", "401"),
    ),
    "SE": (_Place("Stockholm", "Stockholms län", "11"), _Place("Göteborg", "Västra Götaland", "41")),
}

_ENGLISH_STREETS = ("High Street", "Oak Avenue", "Elm Grove", "Cedar Close", "Harbour View", "Meadow Way")
_STREETS: dict[str, tuple[str, ...]] = {
    "GB": (
        "High Street",
        "Station Road",
        "Church Lane",
        "Victoria Road",
        "Park Avenue",
        "Mill Lane",
        "King's Road",
    ),
    "IE": ("Main Street", "Church Road", "Strand Road", "Abbey Street", "O'Connell Street"),
    "US": (
        "Main Street",
        "Oak Avenue",
        "Maple Drive",
        "Park Place",
        "Elm Street",
        "Sunset Boulevard",
        "2nd Avenue",
    ),
    "CA": ("Queen Street West", "Maple Avenue", "King Street", "Bay Street", "Rue Saint-Denis"),
    "AU": ("George Street", "Collins Street", "Queen Street", "Hay Street", "Chapel Street"),
    "DE": ("Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Lindenweg"),
    "NL": ("Kerkstraat", "Dorpsstraat", "Prinsengracht", "Molenweg", "Stationsweg"),
    "FR": ("rue de la Paix", "avenue Victor Hugo", "rue Pasteur", "boulevard Voltaire"),
    "ES": ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Passeig de Gràcia"),
    "IT": ("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele", "Via Dante"),
    "SE": ("Storgatan", "Drottninggatan", "Kungsgatan", "Vasagatan"),
}
# Countries whose addresses put the house number after the street name.
_NUMBER_AFTER = frozenset({"DE", "NL", "ES", "IT", "SE"})
_UNITS = ("Flat {n}", "Apt {n}B", "Unit {n}", "Suite {n}", "Floor {n}")
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def pick_country(rng: random.Random) -> str:
    """A customer's country, weighted like the platform's sales."""
    return rng.choices(tuple(COUNTRY_WEIGHTS), weights=tuple(COUNTRY_WEIGHTS.values()))[0]


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: how a name becomes part of an email address."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _postcode(rng: random.Random, country: str, prefix: str) -> str:
    digit = rng.randint
    if country == "GB":
        return f"{prefix}{digit(1, 19)} {digit(1, 9)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
    if country == "IE":
        tail = "".join(rng.choice("ACDEFHKNPRTVWXY0123456789") for _ in range(4))
        head = f"{prefix}{digit(1, 9)}" if prefix == "D0" else prefix
        return f"{head} {tail}"
    if country == "CA":
        letters = "ABCEGHJKLMNPRSTVXY"
        return f"{prefix}{rng.choice(letters)} {digit(1, 9)}{rng.choice(letters)}{digit(0, 9)}"
    if country == "NL":
        return f"{prefix}{digit(10, 99)} {rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
    if country == "SE":
        return f"{prefix}{digit(1, 9)} {digit(10, 99)}"
    width = 5 if country in {"US", "DE", "FR", "ES", "IT"} else 4
    return prefix + "".join(str(digit(0, 9)) for _ in range(width - len(prefix)))


def _phone(rng: random.Random, country: str) -> str:
    # Numbers from ranges reserved for drama/fiction where such ranges exist (GB 07700 900xxx, US 555-01xx).
    n = rng.randint
    formats = {
        "GB": lambda: f"+44 7700 900{n(0, 999):03d}",
        "US": lambda: f"+1 {n(201, 989)}-555-01{n(0, 99):02d}",
        "CA": lambda: f"+1 {n(204, 905)}-555-01{n(0, 99):02d}",
        "IE": lambda: f"+353 85 {n(100, 999)} {n(1000, 9999)}",
        "AU": lambda: f"+61 491 570 {n(100, 999)}",
        "DE": lambda: f"+49 151 {n(1000000, 9999999)}",
        "NL": lambda: f"+31 6 {n(10000000, 99999999)}",
        "FR": lambda: f"+33 6 {n(10, 99)} {n(10, 99)} {n(10, 99)} {n(10, 99)}",
        "ES": lambda: f"+34 6{n(10, 99)} {n(100, 999)} {n(100, 999)}",
        "IT": lambda: f"+39 3{n(10, 99)} {n(1000000, 9999999)}",
        "SE": lambda: f"+46 70 {n(100, 999)} {n(10, 99)} {n(10, 99)}",
    }
    return formats[country]()


def make_customer(rng: random.Random, customer_id: str, country: str | None = None) -> Customer:
    """A customer with every PII field filled (address_line2 only sometimes), consistent with the country."""
    country = country or pick_country(rng)
    first_names, last_names = _NAMES.get(country, (_ENGLISH_FIRST, _ENGLISH_LAST))
    first, last = rng.choice(first_names), rng.choice(last_names)
    place = rng.choice(_PLACES[country])
    street = rng.choice(_STREETS.get(country, _ENGLISH_STREETS))
    number = rng.randint(1, 240)
    line1 = f"{street} {number}" if country in _NUMBER_AFTER else f"{number} {street}"
    line2 = rng.choice(_UNITS).format(n=rng.randint(1, 30)) if rng.random() < 0.3 else ""
    style = rng.random()
    local = (
        f"{ascii_slug(first)}.{ascii_slug(last)}"
        if style < 0.5
        else f"{ascii_slug(first)[0]}{ascii_slug(last)}{rng.randint(1, 99)}"
        if style < 0.8
        else f"{ascii_slug(first)}{rng.randint(1970, 2005)}"
    )
    return Customer(
        customer_id=customer_id,
        first_name=first,
        last_name=last,
        email=f"{local}@{rng.choice(_EMAIL_DOMAINS)}",
        phone=_phone(rng, country),
        address_line1=line1,
        address_line2=line2,
        city=place.city,
        state=place.state,
        postcode=_postcode(rng, country, place.postcode_prefix),
        country_code=country,
    )
