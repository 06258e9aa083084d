// Package crypto holds the repository's keys and the primitives built on
// them.
//
// A repository has one master key, made of two independent 256-bit keys:
//
//   - the ID key computes blob IDs as HMAC-SHA256 of the plaintext. Keying
//     the hash means the storage provider cannot confirm that the
//     repository holds some known content by hashing it, while equal
//     content still deduplicates. SHA-256 runs on the CPU's SHA extensions
//     (SHA-NI) where present, so IDs cost well under a nanosecond per byte.
//   - the encryption key seals everything stored except the key files, with
//     AES-256-GCM. Blobs are sealed under a subkey derived from the blob ID
//     (HMAC-SHA256 of the ID under the encryption key), so the random
//     96-bit nonces never approach GCM's collision bound however many blobs
//     a repository accumulates, and the ID is bound as associated data, so
//     a blob cannot be swapped for another in a pack without detection.
//
// The master key is stored in key files, each wrapping it under a key
// derived from a password with scrypt; a repository can have several.
package crypto
