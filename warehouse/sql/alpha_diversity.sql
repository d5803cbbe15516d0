-- A row is one kit at one taxonomic rank: alpha diversity of its community at that rank. Abundances are
-- re-normalized within the rank first (p = a / sum(a)), so Shannon = -sum(p ln p), Simpson = 1 - sum(p^2)
-- (Gini-Simpson) and richness = number of taxa with p > 0.
CREATE OR REPLACE VIEW alpha_diversity AS
WITH normalized AS (
    SELECT
        provider,
        kit_id,
        rank,
        relative_abundance / sum(relative_abundance) OVER (PARTITION BY provider, kit_id, rank) AS p
    FROM taxonomy
    WHERE relative_abundance > 0
)
SELECT
    provider,
    kit_id,
    rank,
    -sum(p * ln(p)) AS shannon,
    1 - sum(p * p) AS simpson,
    count(*) AS richness
FROM normalized
GROUP BY provider, kit_id, rank;
