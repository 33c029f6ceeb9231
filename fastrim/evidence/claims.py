"""CCA attestation token keys (Arm CCA Security Model / Realm Management
Monitor specifications): light constants, readable without loading the
CBOR and crypto libraries the token checks need."""

TAG_COLLECTION, TAG_CMW_COLLECTION, TAG_SIGN1 = 399, 907, 18
PLATFORM, REALM = 44234, 44241
CMW_CONTENT_FORMAT = 263

# Realm claims (names as Veraison's annotated evidence calls them).
CLAIM_PROFILE, CLAIM_CHALLENGE = 265, 10
CLAIM_INSTANCE_ID = 256  # the realm-instance-id of RMM 2.0 realm tokens (tag:arm.com,2024:realm#2.0.0)
CLAIM_RPV, CLAIM_HASH_ALGO, CLAIM_RAK, CLAIM_RIM, CLAIM_REMS, CLAIM_RAK_HASH_ALGO = (
    44235, 44236, 44237, 44238, 44239, 44240)
