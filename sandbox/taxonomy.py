"""Real gut taxa with Greengenes lineages, and compositional per-kit abundances with cohort effects.

Abundances are built bottom-up from integer read counts at species level, so every higher rank is exactly the
sum of its children and every rank's abundances sum to 1. Cohort effects (bristol scale, country) shift the
prevalence and log-abundance of a few genera strongly enough that a few hundred kits show them.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import NamedTuple

from sandbox.model import TAXONOMY_RANKS, TaxonAbundance

# Greengenes (13_8 style) lineage above genus: kingdom, phylum, class, order for each family.
_FAMILIES: dict[str, tuple[str, str, str, str]] = {
    "Ruminococcaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Lachnospiraceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Clostridiaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Peptostreptococcaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Veillonellaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Christensenellaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Eubacteriaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Dehalobacteriaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Peptococcaceae": ("Bacteria", "Firmicutes", "Clostridia", "Clostridiales"),
    "Lactobacillaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Streptococcaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Enterococcaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Leuconostocaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Aerococcaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Carnobacteriaceae": ("Bacteria", "Firmicutes", "Bacilli", "Lactobacillales"),
    "Staphylococcaceae": ("Bacteria", "Firmicutes", "Bacilli", "Bacillales"),
    "Bacillaceae": ("Bacteria", "Firmicutes", "Bacilli", "Bacillales"),
    "Gemellaceae": ("Bacteria", "Firmicutes", "Bacilli", "Gemellales"),
    "Turicibacteraceae": ("Bacteria", "Firmicutes", "Bacilli", "Turicibacterales"),
    "Erysipelotrichaceae": ("Bacteria", "Firmicutes", "Erysipelotrichi", "Erysipelotrichales"),
    "Bacteroidaceae": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "Prevotellaceae": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "Rikenellaceae": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "Porphyromonadaceae": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "[Odoribacteraceae]": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "[Paraprevotellaceae]": ("Bacteria", "Bacteroidetes", "Bacteroidia", "Bacteroidales"),
    "Bifidobacteriaceae": ("Bacteria", "Actinobacteria", "Actinobacteria", "Bifidobacteriales"),
    "Actinomycetaceae": ("Bacteria", "Actinobacteria", "Actinobacteria", "Actinomycetales"),
    "Micrococcaceae": ("Bacteria", "Actinobacteria", "Actinobacteria", "Actinomycetales"),
    "Corynebacteriaceae": ("Bacteria", "Actinobacteria", "Actinobacteria", "Actinomycetales"),
    "Coriobacteriaceae": ("Bacteria", "Actinobacteria", "Coriobacteriia", "Coriobacteriales"),
    "Enterobacteriaceae": ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Enterobacteriales"),
    "Pasteurellaceae": ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Pasteurellales"),
    "Moraxellaceae": ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Pseudomonadales"),
    "Pseudomonadaceae": ("Bacteria", "Proteobacteria", "Gammaproteobacteria", "Pseudomonadales"),
    "Alcaligenaceae": ("Bacteria", "Proteobacteria", "Betaproteobacteria", "Burkholderiales"),
    "Oxalobacteraceae": ("Bacteria", "Proteobacteria", "Betaproteobacteria", "Burkholderiales"),
    "Desulfovibrionaceae": ("Bacteria", "Proteobacteria", "Deltaproteobacteria", "Desulfovibrionales"),
    "Campylobacteraceae": ("Bacteria", "Proteobacteria", "Epsilonproteobacteria", "Campylobacterales"),
    "Helicobacteraceae": ("Bacteria", "Proteobacteria", "Epsilonproteobacteria", "Campylobacterales"),
    "Verrucomicrobiaceae": ("Bacteria", "Verrucomicrobia", "Verrucomicrobiae", "Verrucomicrobiales"),
    "Fusobacteriaceae": ("Bacteria", "Fusobacteria", "Fusobacteriia", "Fusobacteriales"),
    "Synergistaceae": ("Bacteria", "Synergistetes", "Synergistia", "Synergistales"),
    "Victivallaceae": ("Bacteria", "Lentisphaerae", "[Lentisphaeria]", "Victivallales"),
    "Methanobacteriaceae": ("Archaea", "Euryarchaeota", "Methanobacteria", "Methanobacteriales"),
}

# family, genus, species epithets (most abundant first), prevalence in healthy adults, typical log-abundance.
_GENERA: tuple[tuple[str, str, tuple[str, ...], float, float], ...] = (
    ("Ruminococcaceae", "Faecalibacterium", ("prausnitzii",), 0.95, 2.3),
    ("Ruminococcaceae", "Ruminococcus", ("bromii", "callidus", "flavefaciens"), 0.90, 1.3),
    ("Ruminococcaceae", "Oscillospira", ("guilliermondii",), 0.90, 1.0),
    ("Ruminococcaceae", "Subdoligranulum", ("variabile",), 0.75, 0.6),
    ("Ruminococcaceae", "Anaerotruncus", ("colihominis",), 0.55, -1.0),
    ("Ruminococcaceae", "Butyricicoccus", ("pullicaecorum",), 0.60, -0.6),
    ("Lachnospiraceae", "Blautia", ("obeum", "producta", "wexlerae"), 0.97, 1.8),
    ("Lachnospiraceae", "Roseburia", ("faecis", "intestinalis", "inulinivorans"), 0.90, 1.2),
    ("Lachnospiraceae", "Coprococcus", ("catus", "eutactus", "comes"), 0.88, 0.7),
    ("Lachnospiraceae", "Dorea", ("formicigenerans", "longicatena"), 0.88, 0.6),
    ("Lachnospiraceae", "[Ruminococcus]", ("gnavus", "torques"), 0.85, 0.4),
    ("Lachnospiraceae", "Lachnospira", ("pectinoschiza",), 0.70, 0.2),
    ("Lachnospiraceae", "Anaerostipes", ("hadrus", "caccae"), 0.75, 0.0),
    ("Lachnospiraceae", "Butyrivibrio", ("crossotus",), 0.35, -1.2),
    ("Lachnospiraceae", "Pseudobutyrivibrio", ("ruminis",), 0.30, -1.4),
    ("Lachnospiraceae", "Lachnobacterium", ("bovis",), 0.30, -1.5),
    ("Clostridiaceae", "Clostridium", ("perfringens", "butyricum", "celatum"), 0.65, -0.8),
    ("Clostridiaceae", "Sarcina", ("ventriculi",), 0.15, -1.8),
    ("Peptostreptococcaceae", "Peptostreptococcus", ("anaerobius",), 0.30, -1.6),
    ("Peptostreptococcaceae", "Romboutsia", ("ilealis",), 0.55, -0.7),
    ("Veillonellaceae", "Veillonella", ("parvula", "dispar"), 0.45, -1.2),
    ("Veillonellaceae", "Dialister", ("invisus",), 0.55, -0.2),
    ("Veillonellaceae", "Megasphaera", ("elsdenii",), 0.30, -0.8),
    ("Veillonellaceae", "Phascolarctobacterium", ("faecium",), 0.55, 0.0),
    ("Veillonellaceae", "Megamonas", ("hypermegale",), 0.12, -0.8),
    ("Veillonellaceae", "Acidaminococcus", ("intestini",), 0.20, -1.5),
    ("Veillonellaceae", "Mitsuokella", ("multacida",), 0.10, -1.6),
    ("Christensenellaceae", "Christensenella", ("minuta",), 0.50, -0.8),
    ("Eubacteriaceae", "Eubacterium", ("rectale", "hallii", "eligens"), 0.90, 1.0),
    ("Dehalobacteriaceae", "Dehalobacterium", ("formicoaceticum",), 0.40, -1.8),
    ("Peptococcaceae", "Peptococcus", ("niger",), 0.20, -2.0),
    ("Lactobacillaceae", "Lactobacillus", ("reuteri", "ruminis", "acidophilus"), 0.35, -1.5),
    ("Lactobacillaceae", "Pediococcus", ("acidilactici",), 0.10, -2.2),
    ("Streptococcaceae", "Streptococcus", ("salivarius", "thermophilus", "anginosus"), 0.70, -0.8),
    ("Streptococcaceae", "Lactococcus", ("lactis",), 0.35, -1.8),
    ("Enterococcaceae", "Enterococcus", ("faecalis", "faecium"), 0.30, -1.8),
    ("Leuconostocaceae", "Leuconostoc", ("mesenteroides",), 0.15, -2.2),
    ("Leuconostocaceae", "Weissella", ("cibaria",), 0.12, -2.2),
    ("Aerococcaceae", "Abiotrophia", ("defectiva",), 0.12, -2.4),
    ("Carnobacteriaceae", "Granulicatella", ("adiacens",), 0.25, -2.2),
    ("Staphylococcaceae", "Staphylococcus", ("aureus", "epidermidis"), 0.15, -2.4),
    ("Bacillaceae", "Bacillus", ("coagulans", "subtilis"), 0.15, -2.4),
    ("Gemellaceae", "Gemella", ("haemolysans",), 0.20, -2.2),
    ("Turicibacteraceae", "Turicibacter", ("sanguinis",), 0.50, -1.0),
    ("Erysipelotrichaceae", "[Eubacterium]", ("biforme", "dolichum", "cylindroides"), 0.65, -0.3),
    ("Erysipelotrichaceae", "Holdemania", ("filiformis",), 0.55, -1.6),
    ("Erysipelotrichaceae", "Catenibacterium", ("mitsuokai",), 0.25, -0.8),
    ("Erysipelotrichaceae", "Coprobacillus", ("cateniformis",), 0.35, -1.7),
    ("Erysipelotrichaceae", "Bulleidia", ("moorei",), 0.15, -2.2),
    ("Bacteroidaceae", "Bacteroides", ("uniformis", "ovatus", "fragilis"), 0.98, 3.0),
    ("Prevotellaceae", "Prevotella", ("copri", "stercorea", "melaninogenica"), 0.40, 1.4),
    ("Rikenellaceae", "Alistipes", ("putredinis", "onderdonkii", "indistinctus"), 0.92, 1.2),
    ("Rikenellaceae", "Rikenella", ("microfusus",), 0.15, -2.0),
    ("Porphyromonadaceae", "Parabacteroides", ("distasonis", "merdae"), 0.88, 0.8),
    ("Porphyromonadaceae", "Porphyromonas", ("asaccharolytica",), 0.12, -2.0),
    ("Porphyromonadaceae", "Tannerella", ("forsythia",), 0.10, -2.3),
    ("[Odoribacteraceae]", "Odoribacter", ("splanchnicus",), 0.70, -0.5),
    ("[Odoribacteraceae]", "Butyricimonas", ("virosa", "synergistica"), 0.55, -1.0),
    ("[Paraprevotellaceae]", "Paraprevotella", ("clara", "xylaniphila"), 0.30, -0.5),
    ("Bifidobacteriaceae", "Bifidobacterium", ("adolescentis", "longum", "bifidum"), 0.78, 0.8),
    ("Actinomycetaceae", "Actinomyces", ("odontolyticus",), 0.35, -2.2),
    ("Micrococcaceae", "Rothia", ("mucilaginosa",), 0.35, -2.3),
    ("Corynebacteriaceae", "Corynebacterium", ("amycolatum",), 0.10, -2.5),
    ("Coriobacteriaceae", "Collinsella", ("aerofaciens", "stercoris"), 0.80, 0.2),
    ("Coriobacteriaceae", "Eggerthella", ("lenta",), 0.55, -1.6),
    ("Coriobacteriaceae", "Adlercreutzia", ("equolifaciens",), 0.55, -1.4),
    ("Coriobacteriaceae", "Slackia", ("isoflavoniconvertens",), 0.30, -1.9),
    ("Enterobacteriaceae", "Escherichia", ("coli",), 0.65, -1.0),
    ("Enterobacteriaceae", "Klebsiella", ("pneumoniae", "oxytoca"), 0.22, -1.6),
    ("Enterobacteriaceae", "Enterobacter", ("cloacae", "aerogenes"), 0.15, -2.0),
    ("Enterobacteriaceae", "Citrobacter", ("freundii",), 0.15, -2.1),
    ("Enterobacteriaceae", "Proteus", ("mirabilis",), 0.08, -2.3),
    ("Enterobacteriaceae", "Morganella", ("morganii",), 0.06, -2.4),
    ("Enterobacteriaceae", "Serratia", ("marcescens",), 0.05, -2.5),
    ("Pasteurellaceae", "Haemophilus", ("parainfluenzae",), 0.45, -1.5),
    ("Moraxellaceae", "Acinetobacter", ("baumannii", "lwoffii"), 0.08, -2.5),
    ("Pseudomonadaceae", "Pseudomonas", ("aeruginosa", "fluorescens"), 0.08, -2.5),
    ("Alcaligenaceae", "Sutterella", ("wadsworthensis",), 0.65, -0.4),
    ("Alcaligenaceae", "Parasutterella", ("excrementihominis",), 0.45, -0.8),
    ("Oxalobacteraceae", "Oxalobacter", ("formigenes",), 0.35, -2.0),
    ("Desulfovibrionaceae", "Desulfovibrio", ("piger", "desulfuricans"), 0.55, -1.2),
    ("Desulfovibrionaceae", "Bilophila", ("wadsworthia",), 0.65, -1.1),
    ("Campylobacteraceae", "Campylobacter", ("jejuni", "concisus"), 0.06, -2.5),
    ("Helicobacteraceae", "Helicobacter", ("pylori",), 0.05, -2.6),
    ("Verrucomicrobiaceae", "Akkermansia", ("muciniphila",), 0.55, 0.5),
    ("Fusobacteriaceae", "Fusobacterium", ("nucleatum", "varium"), 0.15, -2.0),
    ("Synergistaceae", "Pyramidobacter", ("piscolens",), 0.10, -2.3),
    ("Victivallaceae", "Victivallis", ("vadensis",), 0.20, -2.0),
    ("Methanobacteriaceae", "Methanobrevibacter", ("smithii",), 0.35, -0.5),
    ("Methanobacteriaceae", "Methanosphaera", ("stadtmanae",), 0.10, -2.0),
)

# Genus groups the scores and recommendations read (names as in the catalogue).
BENEFICIAL_GENERA = frozenset(
    {"Bifidobacterium", "Lactobacillus", "Akkermansia", "Faecalibacterium", "Roseburia", "Coprococcus"}
)
PATHOBIONT_GENERA = frozenset(
    {
        "Escherichia",
        "Klebsiella",
        "Enterobacter",
        "Citrobacter",
        "Proteus",
        "Morganella",
        "Serratia",
        "Desulfovibrio",
        "Bilophila",
        "Fusobacterium",
        "Staphylococcus",
        "Campylobacter",
        "Helicobacter",
        "Enterococcus",
        "Veillonella",
        "Pseudomonas",
        "Acinetobacter",
        "Abiotrophia",
    }
)
COMMENSAL_GENERA = frozenset(
    {
        "Bacteroides",
        "Blautia",
        "Ruminococcus",
        "Alistipes",
        "Parabacteroides",
        "Dorea",
        "Eubacterium",
        "Oscillospira",
        "Subdoligranulum",
        "Collinsella",
        "Phascolarctobacterium",
    }
)
KINGDOM_IDS = {"Bacteria": 2, "Archaea": 2157}  # NCBI's real ids for the two superkingdoms


@dataclass(frozen=True)
class Taxon:
    """A catalogue entry at one rank: its name, Greengenes lineage and NCBI-like numeric id."""

    rank: str
    name: str
    lineage: str
    taxon_id: int
    parent_id: int


@dataclass(frozen=True)
class Species:
    """A species of the catalogue with its ancestors at every rank (phylum first)."""

    genus: str
    epithet: str
    weight: float  # relative share within its genus
    path: tuple[Taxon, ...]  # phylum, class, order, family, genus, species


@dataclass(frozen=True)
class Genus:
    """A genus of the catalogue with its ecology: how often it is present and how abundant."""

    name: str
    prevalence: float
    log_abundance: float
    species: tuple[Species, ...]


_PREFIXES = ("p__", "c__", "o__", "f__", "g__", "s__")


def _numeric_id(lineage: str, taken: set[int]) -> int:
    """A stable NCBI-like id from the lineage, unique within the catalogue."""
    value = int.from_bytes(hashlib.sha256(lineage.encode()).digest()[:4], "big") % 2_800_000 + 10_000
    while value in taken:
        value += 1
    taken.add(value)
    return value


def _build_catalogue() -> tuple[Genus, ...]:
    taken: set[int] = set(KINGDOM_IDS.values())
    taxa: dict[str, Taxon] = {}
    genera = []
    for family, genus_name, epithets, prevalence, log_abundance in _GENERA:
        kingdom, phylum, klass, order = _FAMILIES[family]
        names = (phylum, klass, order, family, genus_name)
        species_list = []
        for position, epithet in enumerate(epithets):
            lineage = f"k__{kingdom}"
            parent_id = KINGDOM_IDS[kingdom]
            path = []
            for rank, prefix, name in zip(TAXONOMY_RANKS, _PREFIXES, (*names, epithet), strict=True):
                lineage = f"{lineage}; {prefix}{name}"
                taxon = taxa.get(lineage)
                if taxon is None:
                    display = f"{genus_name} {epithet}" if rank == "species" else name
                    taxon = Taxon(rank, display, lineage, _numeric_id(lineage, taken), parent_id)
                    taxa[lineage] = taxon
                path.append(taxon)
                parent_id = taxon.taxon_id
            species_list.append(Species(genus_name, epithet, 1.0 / (1 + position), tuple(path)))
        genera.append(Genus(genus_name, prevalence, log_abundance, tuple(species_list)))
    return tuple(genera)


CATALOGUE: tuple[Genus, ...] = _build_catalogue()
_RANK_INDEX = {rank: index for index, rank in enumerate(TAXONOMY_RANKS)}


class Cohort(NamedTuple):
    """What the lab knows about a sample that shifts its microbiome."""

    country_code: str
    bristol_scale: int | None
    bm_frequency: str | None
    # The customer's standardized polygenic scores (trait key -> z, `sandbox.gencove_results.genome_z`), as
    # sorted pairs so the cohort stays hashable; only traits in GENOTYPE_EFFECTS shift anything.
    genome: tuple[tuple[str, float], ...] = ()


# Ground truth: the sandbox's built-in cross-partner signal, the finding a microbiome x genetics analysis of
# customers who bought both tests should make. Per trait: the genus it moves, and the shift of that genus's
# logit-prevalence and log-abundance per standard deviation of the customer's polygenic score (z).
# Lactase non-persistence (a high lactose-intolerance score) leaves lactose to the colon, where it feeds
# Bifidobacterium: carriers have MORE Bifidobacterium (the LCT-Bifidobacterium association of Goodrich et al.
# 2016 and Bonder et al. 2016). So Gencove's `lactose_intolerance` risk `high_risk` (percentile >= 80) and the
# upper percentile bands go with a higher Bifidobacterium abundance (and prevalence) at Biomesight, and
# through it a slightly higher Probiotic score. No other trait moves the microbiome.
GENOTYPE_EFFECTS: dict[str, tuple[str, float, float]] = {
    "lactose_intolerance": ("Bifidobacterium", 0.6, 0.9),
}


# Prevotella-rich vs Bacteroides-rich guts differ by country (diet): a log-abundance shift for Prevotella.
PREVOTELLA_SHIFT_BY_COUNTRY = {
    "IT": 1.6,
    "ES": 1.3,
    "FR": 0.9,
    "AU": 0.5,
    "IE": 0.3,
    "GB": 0.0,
    "DE": 0.0,
    "NL": -0.1,
    "SE": -0.2,
    "CA": -0.4,
    "US": -0.7,
}


def cohort_shifts(cohort: Cohort) -> tuple[dict[str, tuple[float, float]], float]:
    """Per-genus (logit-prevalence, log-abundance) shifts for a cohort, and a richness shift (logit)."""
    shifts: dict[str, tuple[float, float]] = {}
    richness = 0.0
    bristol = cohort.bristol_scale
    if bristol is not None and bristol <= 2:
        # Slow transit: methanogens and mucin degraders thrive, saccharolytic Bacteroides recede.
        shifts.update(
            Methanobrevibacter=(1.6, 1.6),
            Methanosphaera=(0.8, 0.6),
            Akkermansia=(0.9, 1.0),
            Christensenella=(0.6, 0.6),
            Oscillospira=(0.4, 0.4),
            Bacteroides=(0.0, -0.7),
        )
        richness += 0.35
    elif bristol is not None and bristol >= 6:
        # Fast transit: oxygen-tolerant Proteobacteria and oral-type taxa rise, methanogens vanish.
        shifts.update(
            Escherichia=(1.2, 1.5),
            Klebsiella=(1.2, 1.4),
            Veillonella=(1.2, 1.3),
            Streptococcus=(0.6, 0.9),
            Enterococcus=(0.6, 0.8),
            Methanobrevibacter=(-1.4, -1.2),
            Akkermansia=(-0.5, -0.6),
        )
        richness -= 0.45
    for trait, z in cohort.genome:
        if trait in GENOTYPE_EFFECTS:
            genus, logit_per_z, log_per_z = GENOTYPE_EFFECTS[trait]
            known = shifts.get(genus, (0.0, 0.0))
            shifts[genus] = (known[0] + logit_per_z * z, known[1] + log_per_z * z)
    prevotella = PREVOTELLA_SHIFT_BY_COUNTRY.get(cohort.country_code, 0.0)
    if prevotella:
        shifts["Prevotella"] = (prevotella, prevotella)
        bacteroides = shifts.get("Bacteroides", (0.0, 0.0))
        shifts["Bacteroides"] = (bacteroides[0], bacteroides[1] - 0.4 * prevotella)
    return shifts, richness


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Split `total` reads over `weights` into integers that sum to exactly `total`."""
    weight_sum = sum(weights)
    raw = [total * w / weight_sum for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def generate_taxonomy(rng: random.Random, cohort: Cohort) -> list[TaxonAbundance]:
    """One kit's taxonomy at every rank, rows ordered by rank then descending abundance."""
    shifts, richness = cohort_shifts(cohort)
    richness += rng.gauss(0, 0.6)
    total_reads = int(rng.lognormvariate(math.log(60_000), 0.45))
    present: list[tuple[Genus, float]] = []
    for genus in CATALOGUE:
        logit_shift, log_shift = shifts.get(genus.name, (0.0, 0.0))
        if rng.random() < _sigmoid(_logit(genus.prevalence) + logit_shift + richness):
            present.append((genus, math.exp(genus.log_abundance + log_shift + rng.gauss(0, 1.0))))
    genus_reads = _largest_remainder(total_reads, [weight for _, weight in present])
    species_reads: list[tuple[Species, int]] = []
    for (genus, _), reads in zip(present, genus_reads, strict=True):
        if reads == 0:
            continue
        weights = [sp.weight * rng.gammavariate(1.5, 1.0) for sp in genus.species]
        for species, count in zip(genus.species, _largest_remainder(reads, weights), strict=True):
            if count:
                species_reads.append((species, count))
    counted = sum(count for _, count in species_reads)
    per_taxon: dict[str, tuple[Taxon, int]] = {}
    for species, count in species_reads:
        for taxon in species.path:
            known = per_taxon.get(taxon.lineage)
            per_taxon[taxon.lineage] = (taxon, count + (known[1] if known else 0))
    rows = [
        TaxonAbundance(taxon.rank, taxon.name, taxon.lineage, count / counted, count)
        for taxon, count in per_taxon.values()
    ]
    rows.sort(key=lambda row: (_RANK_INDEX[row.rank], -row.count, row.lineage))
    return rows


TAXA_BY_LINEAGE: dict[str, Taxon] = {
    taxon.lineage: taxon for genus in CATALOGUE for species in genus.species for taxon in species.path
}


def shannon(abundances: list[float]) -> float:
    """Shannon index (natural log) of one rank's abundances."""
    return -sum(p * math.log(p) for p in abundances if p > 0)
