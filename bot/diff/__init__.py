"""The diff: its model (`types`), reading it (`parse`, `sources`), placing comments (`anchor`), and what the
model is shown of it (`filter`, `render`, `batches`)."""
