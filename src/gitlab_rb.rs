//! Reads and edits gitlab_rails['env'] in gitlab.rb: the effective hash as omnibus sees it,
//! minimal edits that keep every other byte, a diff, and an atomic write with a backup.
