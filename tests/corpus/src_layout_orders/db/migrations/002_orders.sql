CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status order_status NOT NULL,
    currency char(3) NOT NULL CHECK (currency IN ('EUR', 'USD')),
    total_cents integer NOT NULL CHECK (total_cents >= 0),
    placed_at timestamptz NOT NULL,
    shipping_address jsonb NOT NULL,
    note text
);

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
