ALTER TABLE orders ADD COLUMN reference uuid NOT NULL;
ALTER TABLE orders RENAME COLUMN note TO customer_note;
