CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(120) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
