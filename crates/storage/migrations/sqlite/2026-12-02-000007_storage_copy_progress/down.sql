DROP TABLE storage_copy_progress;
