-- Remove duplicate contacts imported twice from the old phone, keeping the oldest row of each.
DELETE FROM contacts
WHERE id NOT IN (
    SELECT MIN(id) FROM contacts GROUP BY lower(trim(email))
);
