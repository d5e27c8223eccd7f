/* Every limit on untrusted input, in one place. Each bounds something a peer controls. */
#ifndef BC_LIMITS_H
#define BC_LIMITS_H

/* HTTP */
#define BC_LIMIT_HTTP_BODY (256 * 1024)        /* request body bytes (a 25 KiB secret base64'd in JSON fits easily) */
#define BC_LIMIT_HTTP_HEADERS 64               /* header fields per request */
#define BC_LIMIT_HTTP_HEADER_BYTES (16 * 1024) /* all request header bytes (MHD memory pool) */
#define BC_LIMIT_HTTP_URL 8192                 /* request target bytes */
#define BC_LIMIT_HTTP_QUERY_PARAMS 32          /* query parameters per request */
#define BC_LIMIT_HTTP_PATH_SEGMENTS 16         /* path segments per request */
#define BC_LIMIT_HTTP_CONNECTIONS 4096         /* concurrent connections per listener */
#define BC_LIMIT_HTTP_TIMEOUT_S 60             /* idle connection timeout */
#define BC_LIMIT_HTTP_PARK_MS (10 * 60 * 1000)  /* longest a request may stay parked (long poll) */
#define BC_LIMIT_HTTP_PARKED 16384             /* requests parked at once per server */
#define BC_LIMIT_HTTP_DRAIN_MS 20000           /* longest a stop waits for requests in flight (SIGTERM) */
#define BC_LIMIT_HTTPC_RESPONSE (1024 * 1024)  /* bytes of a response the HTTP client accepts */

/* forms and JSON */
#define BC_LIMIT_FORM_FIELDS 32     /* fields in an application/x-www-form-urlencoded body */
#define BC_LIMIT_JSON_DEPTH 32      /* nesting depth of a JSON document we parse */
#define BC_LIMIT_JSON_BYTES (256 * 1024)

/* JOSE */
#define BC_LIMIT_JWT_BYTES 16384      /* compact JWT/JWS length (assertions, bearer tokens) */
#define BC_LIMIT_JWT_HEADER_BYTES 2048 /* decoded JOSE header */
#define BC_LIMIT_JWK_BYTES 16384      /* one JWK */
#define BC_LIMIT_JWKS_KEYS 64         /* keys in one JWKS */
#define BC_LIMIT_KID 128              /* kid length */
#define BC_LIMIT_ASSERTION_LIFETIME_S 3600 /* exp - now of a client assertion */
#define BC_LIMIT_CLOCK_SKEW_S 300     /* tolerated clock skew for nbf/exp/iat */
#define BC_LIMIT_RSA_BITS_MIN 2048    /* smallest RSA modulus accepted in a JWK, certificate or CSR */
#define BC_LIMIT_RSA_BITS_MAX 8192    /* largest RSA modulus (verification cost grows with it) */
#define BC_LIMIT_PEM_BYTES (64 * 1024) /* PEM text given to bc_jwk_from_pem (key or certificate) */

/* directory */
#define BC_LIMIT_DISPLAY_NAME 256
#define BC_LIMIT_SECRET_BYTES 512  /* client secret length */
#define BC_LIMIT_CERT_BYTES 16384  /* PEM certificate or CSR */
#define BC_LIMIT_RESOURCE 512      /* resource / scope / audience string */

/* names, resources */
#define BC_LIMIT_NAME 127          /* Key Vault object name, ARM resource names */
#define BC_LIMIT_RESOURCE_ID 1024  /* ARM resource id */
#define BC_LIMIT_TAGS 15           /* tags per object (Key Vault's own limit) */
#define BC_LIMIT_TAG_BYTES 512

/* vault */
#define BC_LIMIT_SECRET_VALUE (25 * 1024) /* Key Vault's secret size limit */
#define BC_LIMIT_PAGE_SIZE 25             /* maxresults cap (Key Vault's) */
#define BC_LIMIT_CRYPTO_INPUT 8192        /* bytes given to encrypt/sign/wrap */
#define VAULT_LIMIT_TAG_NAME 512                   /* tag name characters (Key Vault: 512) */
#define VAULT_LIMIT_TAG_VALUE 256                  /* tag value characters (Key Vault: 256) */
#define VAULT_LIMIT_CONTENT_TYPE 255               /* contentType characters */
#define VAULT_LIMIT_BACKUP_BODY (4 * 1024 * 1024)  /* restore request body bytes */
#define VAULT_LIMIT_BACKUP_VERSIONS 500            /* versions carried in one backup blob */
#define VAULT_LIMIT_BODY (64 * 1024)               /* request body bytes of non-secret operations */
#define VAULT_LIMIT_SECRET_BODY (200 * 1024)       /* set-secret body: 25 KiB escaped up to 6x */
#define VAULT_LIMIT_RNG 128                        /* bytes of one getrandombytes call (Azure: 128) */

/* workload identity federation (directory/federation.c, manager/fic.c) */
#define BC_LIMIT_FIC_PER_IDENTITY 20        /* federated credentials of one identity (Azure's) */
#define BC_LIMIT_FIC_NAME 120               /* federated credential name characters (Azure's) */
#define BC_LIMIT_FIC_FIELD 600              /* issuer, subject, audience characters (Entra's) */
#define BC_LIMIT_FED_DOC_BYTES (64 * 1024)  /* an issuer's openid-configuration or JWKS response */
#define BC_LIMIT_FED_FETCH_MS 5000          /* whole fetch of one issuer document */
#define BC_LIMIT_FED_CONNECT_MS 2000        /* connecting to an issuer */
#define BC_LIMIT_FED_CACHE_S 600            /* an issuer's keys are used this long after fetching */
#define BC_LIMIT_FED_REFETCH_S 30           /* an unknown kid refetches the keys at most this often */
#define BC_LIMIT_FED_ISSUERS 64             /* issuers whose keys are cached at once */
#define BC_LIMIT_FED_LIFETIME_S 86400       /* exp - iat of an external assertion */

/* config */
#define BC_LIMIT_CONFIG_BYTES (64 * 1024)
#define BC_LIMIT_CONFIG_LINE 4096

#endif
