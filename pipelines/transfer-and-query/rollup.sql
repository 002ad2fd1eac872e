-- Roll the staged orders up per region. The whole script is one transaction: if any statement
-- fails, region_summary is not left half-built. :min_amount and :since are the pipeline's
-- parameters, bound (never pasted into the SQL).

DROP TABLE IF EXISTS region_summary;

CREATE TABLE region_summary AS
SELECT region,
       COUNT(*)              AS orders,
       ROUND(SUM(amount), 2) AS revenue,
       ROUND(AVG(amount), 2) AS average_order
FROM orders
WHERE amount >= :min_amount
  AND ordered_on >= :since
GROUP BY region;

-- The last result set is what `export` writes to summary.csv.
SELECT region, orders, revenue, average_order
FROM region_summary
ORDER BY revenue DESC, region;
