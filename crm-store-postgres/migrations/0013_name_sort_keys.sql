-- 0013: lists sorted by name or title sort the way Chinese users expect:
-- pinyin order (as Excel and WPS sort Chinese), letter case aside,
-- full-width letters and digits as ASCII. Byte order of the name itself
-- (what both stores compared before, here in `COLLATE "C"`) puts 张三
-- before 李四 and `Zebra` before `apple`. Each table lists sort by name or
-- title gets a column of the text's sort key (crm-core pinyin.rs
-- `sort_key`), which the engine writes with every name or title it writes
-- and sorts by where a list is sorted by name or title (schema.rs
-- `SORT_KEYS`).
--
-- SQL cannot compute the keys (they need the pinyin data), so rows
-- stored before this migration have none: they sort after every row that
-- has one, by their name, until `crm rebuild-search-keys`
-- (`Crm::rebuild_search_keys`) fills them; run it once after upgrading.
-- No index: no list walks an index in name order (a sorted page sorts
-- the rows its filter and scope select). The SQLite store numbers the
-- same change 0014.
--
-- Runs with search_path set to the CRM schema only; names are unqualified.
-- SHIPPED once released: never edit; add a new numbered file instead.

ALTER TABLE customers ADD COLUMN name_sort text;
ALTER TABLE contacts ADD COLUMN name_sort text;
ALTER TABLE products ADD COLUMN name_sort text;
ALTER TABLE opportunities ADD COLUMN name_sort text;
ALTER TABLE quotes ADD COLUMN title_sort text;
ALTER TABLE contracts ADD COLUMN title_sort text;
