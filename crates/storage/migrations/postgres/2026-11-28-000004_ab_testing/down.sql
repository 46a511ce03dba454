DROP TABLE IF EXISTS ab_metric_totals;
DROP TABLE IF EXISTS ab_results;
DROP TABLE IF EXISTS ab_assignments;
DROP TABLE IF EXISTS ab_experiments;
