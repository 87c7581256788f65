-- 0002: indexes on the columns that name stored files (D17, G-14). Files are content-addressed
-- and may be shared by several rows, so before removing one the server asks whether any row
-- still names its key; without these indexes each question would scan the whole table.

CREATE INDEX idx_attachments_storage_key ON attachments(storage_key);
CREATE INDEX idx_emojis_image_key ON emojis(image_key);
CREATE INDEX idx_soundboard_sounds_audio_key ON soundboard_sounds(audio_key);
