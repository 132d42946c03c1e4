"""The public API's OpenAPI 3.1 document (SPEC section 14), written as data: `make openapi`
runs this into api/openapi.json and embeds that in the gateway, which serves it at
/openapi.json. Error responses are shared; request bodies refuse unknown fields, as the
gateway does; responses leave out fields at their default value, as proto3's JSON mapping does.
"""
import json

string = {"type": "string"}
def s(maxLength=None, **kw):
    d = {"type": "string"}
    if maxLength: d["maxLength"] = maxLength
    d.update(kw); return d
i64 = {"type": "integer", "format": "int64"}
u32 = {"type": "integer", "format": "int32", "minimum": 0}
i32 = {"type": "integer", "format": "int32"}
boolean = {"type": "boolean"}
def arr(x, **kw): d={"type": "array", "items": x}; d.update(kw); return d
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def obj(props, required=(), strict=False, desc=None):
    d = {"type": "object", "properties": props}
    if required: d["required"] = list(required)
    if strict: d["additionalProperties"] = False
    if desc: d["description"] = desc
    return d

mfa_requirement_enum = {"type": "string", "enum": ["MFA_REQUIREMENT_NONE", "MFA_REQUIREMENT_ADMINS", "MFA_REQUIREMENT_EVERYONE"],
                        "description": "MFA-7: who must sign in with MFA; a member without it enrols at their next sign-in"}
role_enum = {"type": "string", "enum": ["MEMBER_ROLE_OWNER", "MEMBER_ROLE_ADMIN", "MEMBER_ROLE_MEMBER"]}
status_enum = {"type": "string", "enum": ["MEMBER_STATUS_ACTIVE", "MEMBER_STATUS_DISABLED"]}
uuid = s(format="uuid")
tenant_hex = s(pattern="^[0-9a-f]{32}$")

schemas = {
 "Problem": obj({"type": s(format="uri"), "title": string, "status": {"type": "integer"}, "detail": string,
                 "request_id": string, "errors": {"type": "object", "additionalProperties": string}},
                required=["type", "title", "status", "detail", "request_id"],
                desc="RFC 9457 problem details; `type` is stable per error code, `errors` names fields or reasons."),
 "Organization": obj({"name": s(256), "country": s(2, description="ISO 3166-1 alpha-2"), "registration_number": s(64)}, strict=True),
 "RegisterRequest": obj({"email": s(254, format="email"), "password": s(1024), "name": s(256), "organization": ref("Organization")},
                        required=["email", "password", "organization"], strict=True),
 "RegisterReply": obj({"user_id": string, "tenant_id": string}),
 "LoginRequest": obj({"email": s(254), "password": s(1024), "tenant_id": s(64, description="the tenant to sign in to; empty: the one registered"),
                      "device_token": s(128, description="the device_token of an earlier sign-in to this account: its sign-ins are counted on their own, so others' wrong guesses do not lock this device out")},
                     required=["email", "password"], strict=True),
 "TokenReply": obj({"access_token": string, "refresh_token": string, "token_type": string, "expires_in": i64, "session_id": string, "tenant_id": string,
                    "mfa_required": boolean, "mfa_token": s(description="with mfa_required: present it with a code to /v1/auth/login/mfa"),
                    "mfa_enrollment_required": dict(boolean, description="the tenant requires MFA of this member, who has none yet: enrol with the mfa_token at /v1/auth/login/mfa/enroll first"),
                    "backup_codes": arr(string, description="after an enrolment at sign-in: the ten backup codes, shown this once"),
                    "device_token": s(description="after a sign-in: keep it, and send it with this account's next sign-ins (90 days; a password change voids it)")},
                   desc="the session's tokens, or, for a user with MFA on (or required by the tenant), mfa_required and the mfa_token for the second step"),
 "LoginMfaRequest": obj({"mfa_token": s(128), "code": s(32, description="the app's current 6-digit code, or a backup code")}, required=["mfa_token", "code"], strict=True),
 "LoginMfaEnrollRequest": obj({"mfa_token": s(128, description="the mfa_token of a sign-in answered with mfa_enrollment_required")}, required=["mfa_token"], strict=True),
 "RefreshRequest": obj({"refresh_token": s(512)}, required=["refresh_token"], strict=True),
 "RequestPasswordResetRequest": obj({"email": s(254)}, required=["email"], strict=True),
 "ConfirmPasswordResetRequest": obj({"token": s(512), "new_password": s(1024)}, required=["token", "new_password"], strict=True),
 "VerifyEmailRequest": obj({"token": s(512)}, required=["token"], strict=True),
 "VerifyEmailReply": obj({"user_id": string}),
 "ChangePasswordRequest": obj({"current_password": s(1024), "new_password": s(1024)}, required=["current_password", "new_password"], strict=True),
 "ChangePasswordReply": obj({"other_sessions_revoked": i32}),
 "Empty": obj({}),
 "MfaEnrollReply": obj({"secret": s(description="base32, for typing into an authenticator app"), "otpauth_uri": string, "qr_svg": s(description="the URI's QR code, an SVG document")}),
 "MfaConfirmRequest": obj({"code": s(6, pattern="^[0-9]{6}$")}, required=["code"], strict=True),
 "MfaConfirmReply": obj({"backup_codes": arr(string, description="ten single-use codes, shown this once")}),
 "MfaResetReply": obj({"reset": {"type": "boolean", "description": "false (left out) when the member had no MFA on"}}),
 "MfaStatusReply": obj({"enabled": boolean, "enabled_at_ms": i64, "backup_codes_remaining": i32}),
 "MfaProofRequest": obj({"code": s(32, description="the app's current code (DELETE /v1/auth/mfa: or an unused backup code)"), "password": s(1024, description="refused: the password is not a second factor")}, strict=True),
 "MfaEnrollRequest": obj({"password": s(1024, description="your current password: a session alone does not enrol an authenticator")}, required=["password"], strict=True),
 "StepUpRequest": obj({"code": s(32, description="with MFA on: the app's current code or an unused backup code"), "password": s(1024, description="without MFA: your password")}, strict=True),
 "Session": obj({"session_id": string, "ip": string, "user_agent": string, "created_at_ms": i64, "last_seen_at_ms": i64, "current": boolean}),
 "ListSessionsReply": obj({"sessions": arr(ref("Session"))}),
 "RevokeSessionsReply": obj({"revoked": i32}),
 "WhoAmIReply": obj({"principal": string, "tenant_id": string, "session_id": string, "roles": arr(string), "scopes": arr(string), "created_by": string}),
 "ApiKey": obj({"api_key_id": string, "name": string, "prefix": string, "scopes": arr(string), "created_by": string, "created_at_ms": i64,
                "expires_at_ms": i64, "last_used_at_ms": i64, "last_used_ip": string, "rate_limit_per_minute": u32, "rotation_due": boolean, "replaced_by": string}),
 "CreateApiKeyRequest": obj({"name": s(128), "scopes": arr(s(64), maxItems=32), "rate_limit_per_minute": u32, "expires_in_days": u32},
                            required=["name", "scopes"], strict=True),
 "CreateApiKeyReply": obj({"api_key": ref("ApiKey"), "key": s(description="the secret, shown this once")}),
 "ListApiKeysReply": obj({"api_keys": arr(ref("ApiKey")), "scopes": arr(ref("ApiKeyScope"))}),
 "ApiKeyScope": obj({"name": string, "description": string}),
 "RotateApiKeyRequest": obj({"grace_seconds": u32}, strict=True),
 "TenantPolicies": obj({"ip_allowlist": arr(string), "mfa_requirement": mfa_requirement_enum, "sso_enforced": boolean, "password_rotation_days": u32, "audit_retention_days": u32,
                        "break_glass_owners": arr(string, description="SSO-2: the owners who may still sign in with a password while SSO is enforced")}),
 "Tenant": obj({"tenant_id": string, "name": string, "slug": string,
                "status": {"type": "string", "enum": ["TENANT_STATUS_PROVISIONING", "TENANT_STATUS_ACTIVE", "TENANT_STATUS_SUSPENDED", "TENANT_STATUS_DELETING", "TENANT_STATUS_DELETED"]},
                "plan": string, "country": string, "registration_number": string, "email_domain": string, "data_region": string,
                "created_at_ms": i64, "last_activity_at_ms": i64, "policies": ref("TenantPolicies"), "waiting_for": arr(string),
                "starter_claim_until_ms": dict(i64, description="AUTH-11: while the owner's address is unverified, the domain's Starter claim lapses at this time; absent once held for good"),
                "isolation": dict(ref("Isolation"), description="IR-1: set while the tenant is isolated (status suspended)")}),
 "UpdateTenantRequest": obj({"name": s(256), "plan": s(32), "mfa_requirement": mfa_requirement_enum,
                             "sso_enforced": dict(boolean, description="SSO-2: true needs an active SSO connection; members then sign in through it, passwords only for the break-glass owners"),
                             "password_rotation_days": u32,
                             "break_glass_owners": arr(s(36), maxItems=2, description="user IDs of active owners"),
                             "set_break_glass_owners": dict(boolean, description="replace the break-glass owners with break_glass_owners")}, strict=True),
 "IpAllowlist": obj({"cidrs": arr(s(64), maxItems=100)}, strict=True),
 "Isolation": obj({"reason": string, "isolated_by": string, "isolated_at_ms": i64}),
 "Member": obj({"user_id": string, "email": string, "role": role_enum, "status": status_enum, "joined_at_ms": i64,
                "isolation": dict(ref("Isolation"), description="IR-1: set while the member is isolated")}),
 "IsolateRequest": obj({"reason": s(600, description="required: 1 to 500 characters, for the audit log")}, required=["reason"], strict=True),
 "IsolationReply": obj({"member": ref("Member"), "tenant": ref("Tenant"), "sessions_revoked": i32, "api_keys_revoked": i32}),
 "UserIsolationReply": obj({"user_id": string, "isolation": ref("Isolation"), "sessions_revoked": i32, "api_keys_revoked": i32}),
 "Invitation": obj({"invitation_id": string, "email": string, "role": role_enum, "expires_at_ms": i64, "invited_by": string}),
 "ListMembersReply": obj({"members": arr(ref("Member")), "invitations": arr(ref("Invitation"))}),
 "InviteMemberRequest": obj({"email": s(254), "role": role_enum}, required=["email", "role"], strict=True),
 "InviteMemberReply": obj({"invitation": ref("Invitation")}, desc="the token goes to the invited address by mail, never back to the inviter"),
 "JoinRequest": obj({"token": s(128, description="from the invitation mail"), "name": s(256, description="a new person only"),
                     "password": s(1024, description="a new person only; the password policy applies")}, required=["token"], strict=True),
 "JoinReply": obj({"tenant_id": string, "user_id": string}),
 "Membership": obj({"tenant_id": string, "tenant_name": string, "role": role_enum, "status": status_enum,
                    "tenant_status": {"type": "string", "enum": ["TENANT_STATUS_PROVISIONING", "TENANT_STATUS_ACTIVE", "TENANT_STATUS_SUSPENDED"]},
                    "joined_at_ms": i64}),
 "ListMembershipsReply": obj({"memberships": arr(ref("Membership"))}),
 "SwitchTenantRequest": obj({"tenant_id": s(64, description="a tenant you belong to")}, required=["tenant_id"], strict=True),
 "UpdateMemberRequest": obj({"user_id": s(36, description="optional; when given, the member the path names"), "role": role_enum, "status": status_enum}, strict=True),
 "MemberReply": obj({"member": ref("Member"), "permissions_revision": {"type": "integer", "format": "int64", "minimum": 0}, "warnings": arr(string)}),
 "RoleBinding": obj({"principal": string, "role": string, "resource": string, "granted_by": string, "granted_at_ms": i64}),
 "ListAccessReply": obj({"bindings": arr(ref("RoleBinding")), "revision": {"type": "integer", "minimum": 0}}),
 "ResourceRoleBody": obj({"role": s(32, description="owner, editor or viewer")}, required=["role"], strict=True),
 "PermissionsWriteReply": obj({"revision": {"type": "integer", "minimum": 0}, "binding": ref("RoleBinding")}),
 "PermissionCheckBody": obj({"principal_id": s(36, description="a member's user ID; empty: the caller"), "action": s(64), "resource": s(200, description="<type>/<id>, or empty for the tenant"),
                             "at_least_revision": {"type": "integer", "minimum": 0}}, required=["action"], strict=True),
 "CheckReply": obj({"allowed": boolean, "reason": string, "revision": {"type": "integer", "minimum": 0}}),
 "AccessReviewEntry": obj({"user_id": string, "email": string, "tenant_role": string, "status": string, "resource_roles": arr(ref("RoleBinding")), "last_active_at_ms": i64}),
 "AccessReviewReply": obj({"entries": arr(ref("AccessReviewEntry")), "warnings": arr(string), "generated_at_ms": i64, "last_reviewed_at_ms": i64,
                           "last_reviewed_by": string, "review_due_at_ms": i64, "revision": {"type": "integer", "minimum": 0}}),
 "CompleteAccessReviewRequest": obj({"note": s(1000)}, strict=True),
 "AuditRecord": obj({"position": i64, "event": {"type": "object", "description": "an AuditEvent (proto/rampart/v1/audit.proto) in proto3 JSON"}}),
 "AuditQueryReply": obj({"records": arr(ref("AuditRecord")), "next_cursor": string}),
 "AuditVerifyReply": obj({"valid": boolean, "verified_events": i64, "first_bad_position": i64, "problem": string}),
 "Ban": obj({"network": string, "banned_at_ms": i64, "until_ms": i64, "offences": u32, "reason": string, "lifted_by": string}),
 "ListBansReply": obj({"bans": arr(ref("Ban"))}),
 "UnbanReply": obj({"lifted": boolean, "ban": ref("Ban")}),
 "Health": obj({"status": string}),
 "WebhookEndpoint": obj({"endpoint_id": string, "url": string, "description": string, "event_types": arr(string), "enabled": boolean,
                         "disabled_reason": s(description="gone (it answered 410) or failing (every delivery failed for days), when the service turned it off"),
                         "created_at_ms": i64, "updated_at_ms": i64, "previous_secret_expires_at_ms": i64, "failing_since_ms": i64}),
 "CreateEndpointRequest": obj({"url": s(2048, description="http or https; checked against the SSRF rules (WH-3)"), "description": s(500),
                               "event_types": arr(s(64), maxItems=50, description="audit actions (member.invited), prefixes (member.*) or *"),
                               "enabled": boolean}, required=["url", "event_types"], strict=True),
 "CreateEndpointReply": obj({"endpoint": ref("WebhookEndpoint"), "secret": s(description="whsec_…: the signing secret, shown this once")}),
 "UpdateEndpointRequest": obj({"endpoint_id": s(36, description="optional; when given, the endpoint the path names"), "url": s(2048), "description": s(500),
                               "event_types": arr(s(64), maxItems=50), "set_event_types": dict(boolean, description="replace the event types with event_types"),
                               "enabled": boolean}, strict=True),
 "EndpointReply": obj({"endpoint": ref("WebhookEndpoint")}),
 "ListEndpointsReply": obj({"endpoints": arr(ref("WebhookEndpoint"))}),
 "SsoConnection": obj({"connection_id": string, "preset": {"type": "string", "enum": ["google", "microsoft", "okta", "oidc"]}, "issuer": string, "client_id": string,
                       "domains": arr(string), "test_users": arr(string), "state": {"type": "string", "enum": ["draft", "testing", "active"]},
                       "claim_mapping": {"type": "object", "additionalProperties": string}, "trust_provider_mfa": boolean,
                       "id_token_algorithms": arr(string), "redirect_uri": s(description="register it at the provider as this client's redirect URI"),
                       "created_at_ms": i64, "updated_at_ms": i64}, desc="an SSO connection; its client secret is never answered"),
 "CreateSsoConnectionRequest": obj({"preset": {"type": "string", "enum": ["google", "microsoft", "okta", "oidc"]},
                                    "issuer": s(512, description="okta and oidc: the provider's issuer URL, https (checked against the SSRF rules, WH-3); google: fixed; microsoft: made from directory"),
                                    "directory": s(253, description="microsoft: the Entra tenant ID or primary domain (never common, organizations or consumers)"),
                                    "client_id": s(256), "client_secret": s(512, description="sealed at rest, never answered"),
                                    "domains": arr(s(253), maxItems=20, description="domains this tenant verified: their people may sign in by address and are provisioned at first sign-in"),
                                    "test_users": arr(s(254), maxItems=20, description="while testing, the only addresses that may sign in through it"),
                                    "claim_mapping": {"type": "object", "properties": {"email": s(64), "name": s(64)}, "additionalProperties": False,
                                                      "description": "the ID token claims holding the address and the name, when not email and name"},
                                    "trust_provider_mfa": dict(boolean, description="the provider's amr (mfa, otp, hwk) stands for the tenant's MFA requirement"),
                                    "id_token_algorithms": arr(s(8), description="beyond what the provider declares; HS256 only when named here")},
                                   required=["preset", "client_id", "client_secret"], strict=True),
 "UpdateSsoConnectionRequest": obj({"connection_id": s(36, description="optional; when given, the connection the path names"), "issuer": s(512),
                                    "client_id": s(256), "client_secret": s(512),
                                    "domains": arr(s(253), maxItems=20), "set_domains": dict(boolean, description="replace the domains with domains"),
                                    "test_users": arr(s(254), maxItems=20), "set_test_users": dict(boolean, description="replace the test users with test_users"),
                                    "state": {"type": "string", "enum": ["draft", "testing", "active"],
                                              "description": "testing needs a test user; testing and active a provider whose discovery document answers"},
                                    "claim_mapping": {"type": "object", "properties": {"email": s(64), "name": s(64)}, "additionalProperties": False},
                                    "set_claim_mapping": boolean, "trust_provider_mfa": boolean,
                                    "id_token_algorithms": arr(s(8)), "set_id_token_algorithms": boolean}, strict=True),
 "SsoConnectionReply": obj({"connection": ref("SsoConnection")}),
 "SsoDomain": obj({"domain": string, "state": {"type": "string", "enum": ["pending", "verified"]},
                   "record_name": s(description="publish a TXT record of this name…"), "record_value": s(description="…holding this value"),
                   "created_at_ms": i64, "verified_at_ms": i64}),
 "AddSsoDomainRequest": obj({"domain": s(253, description="not a mail provider's, a disposable one's or a public suffix")}, required=["domain"], strict=True),
 "SsoDomainReply": obj({"domain": ref("SsoDomain")}),
 "ListSsoDomainsReply": obj({"domains": arr(ref("SsoDomain"))}),
 "LinkedIdentity": obj({"provider": {"type": "string", "enum": ["google"]}, "email": string, "linked_at_ms": i64, "last_used_at_ms": i64}),
 "ListIdentitiesReply": obj({"identities": arr(ref("LinkedIdentity"))}),
 "LinkGoogleRequest": obj({"return_to": s(512)}),
 "LinkGoogleReply": obj({"authorization_url": string, "expires_in": {"type": "integer"}}),
 "ListSsoConnectionsReply": obj({"connections": arr(ref("SsoConnection"))}),
 "RotateSecretRequest": obj({"grace_seconds": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 604800,
                                               "description": "how long the old secret keeps signing beside the new one (default 86400)"}}, strict=True),
 "Delivery": obj({"delivery_id": string, "endpoint_id": string, "event_id": string, "event_type": string,
                  "status": {"type": "string", "enum": ["DELIVERY_STATUS_PENDING", "DELIVERY_STATUS_SUCCEEDED", "DELIVERY_STATUS_DEAD"]},
                  "attempts": i32, "response_status": i32, "last_error": string, "latency_ms": i64, "created_at_ms": i64,
                  "last_attempt_at_ms": i64, "next_attempt_at_ms": i64}),
 "ListDeliveriesReply": obj({"deliveries": arr(ref("Delivery")), "next_cursor": string}),
 "DeliveryReply": obj({"delivery": ref("Delivery")}),
 "InboundReply": obj({"event_id": s(description="the provider's event ID"), "duplicate": dict(boolean, description="accepted before: not published again")}),
}

error_codes = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound", "408": "RequestTimeout",
               "409": "Conflict", "413": "ContentTooLarge", "415": "UnsupportedMediaType", "429": "TooManyRequests",
               "503": "ServiceUnavailable", "504": "GatewayTimeout"}
descriptions = {"400": "malformed input: the body, a parameter or a header", "401": "no credential, or one that is not valid; or, where an action needs a recent proof (`errors.reason`: step_up_required), a sign-in or step-up older than `errors.max_age` seconds",
                "403": "not allowed: another tenant, a missing permission (`errors.reason`), an address outside the tenant's IP allowlist, an unverified email address where AUTH-11 needs one (`errors.reason`: email_unverified)",
                "404": "no such route or resource", "408": "the body did not arrive in time", "409": "conflicts with the current state",
                "413": "the body is larger than 64 KiB", "415": "the body is not application/json",
                "429": "over a rate limit, or the client's network is banned; see Retry-After and the RateLimit fields",
                "503": "a service the request needs is not available; fail closed", "504": "the owning service did not answer in time"}
rl_headers = {"RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"}, "RateLimit": {"$ref": "#/components/headers/RateLimit"},
              "X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
responses = {}
for code, name in error_codes.items():
    r = {"description": descriptions[code], "content": {"application/problem+json": {"schema": ref("Problem")}}, "headers": dict(rl_headers)}
    if code in ("429", "503"):
        r["headers"]["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    responses[name] = r

def errors(public=False):
    return {code: {"$ref": f"#/components/responses/{name}"} for code, name in error_codes.items()}

def ok(schema, status="200", description="OK", content_type="application/json", extra_headers=None):
    r = {"description": description, "headers": dict(rl_headers)}
    if extra_headers: r["headers"].update(extra_headers)
    if schema is not None:
        r["content"] = {content_type: {"schema": schema}}
    return {status: r}

consistency_header = {"Rampart-Consistency-Token": {"description": "the permissions revision this write produced (PERM-6); present it on later requests", "schema": string}}

def op(opid, summary, tag, body=None, response=None, status="200", secured=True, params=(), content_type="application/json", extra_headers=None, description=None):
    o = {"operationId": opid, "summary": summary, "tags": [tag]}
    if description: o["description"] = description
    if params: o["parameters"] = list(params)
    if body: o["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body) if isinstance(body, str) else body}}}
    rs = {}
    if status == "204":
        rs["204"] = {"description": "done", "headers": dict(rl_headers)}
    else:
        rs.update(ok(ref(response) if isinstance(response, str) else response, status, content_type=content_type, extra_headers=extra_headers))
    rs.update(errors())
    o["responses"] = rs
    o["security"] = [{"bearer": []}] if secured else []
    return o

def p(name, schema, description=None, where="path", required=True):
    d = {"name": name, "in": where, "required": required, "schema": schema}
    if description: d["description"] = description
    return d

T = p("tenant_id", tenant_hex, "the tenant (32 lower-case hex digits); your credential's own")
E = p("endpoint_id", uuid, "one of the tenant's webhook endpoints")
C = p("connection_id", uuid, "one of the tenant's SSO connections")
D = p("domain", s(253), "a domain the tenant claimed")
consistency = p("Rampart-Consistency-Token", s(20, pattern="^[0-9]{1,20}$"), "a revision a write returned: no decision older than it is used", where="header", required=False)
filters = [p("actor_id", s(256), where="query", required=False), p("action", s(64), where="query", required=False),
           p("target_type", s(64), where="query", required=False), p("target_id", s(256), where="query", required=False),
           p("outcome", {"type": "string", "enum": ["success", "failure"]}, where="query", required=False),
           p("ip", {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}, where="query", required=False),
           p("from_ms", {"type": "integer", "format": "int64", "minimum": 0}, "occurred at or after (Unix ms)", where="query", required=False),
           p("to_ms", {"type": "integer", "format": "int64", "minimum": 0}, "occurred before (Unix ms)", where="query", required=False)]

paths = {
 "/healthz": {"get": {"operationId": "health", "summary": "liveness", "tags": ["operations"], "security": [],
                      "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": ref("Health")}}}}}},
 "/readyz": {"get": {"operationId": "readiness", "summary": "readiness: NATS and the revocation list", "tags": ["operations"], "security": [],
                     "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                                   "503": {"description": "not ready", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
 "/openapi.json": {"get": {"operationId": "openapi", "summary": "this document", "tags": ["operations"], "security": [],
                           "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}, **{k: v for k, v in errors().items() if k in ("429", "503")}}}},
 "/.well-known/security.txt": {"get": {"operationId": "securityTxt", "summary": "RFC 9116 disclosure contact", "tags": ["operations"], "security": [],
                                       "responses": {**ok({"type": "string"}, content_type="text/plain"), **{k: v for k, v in errors().items() if k in ("429", "503")}}}},
 "/.well-known/jwks.json": {"get": op("jwks", "the public keys access tokens are signed with", "auth", response={"type": "object"}, secured=False)},
 "/v1/auth/register": {"post": op("register", "a user and their organization's tenant (owner)", "auth", "RegisterRequest", "RegisterReply", status="201", secured=False)},
 "/v1/auth/login": {"post": op("login", "sign in", "auth", "LoginRequest", "TokenReply", secured=False)},
 "/v1/auth/sso/start": {"get": op("ssoStart", "sign in through a tenant's SSO connection: 302 to the provider (code flow, PKCE S256, state, nonce), with a cookie binding the sign-in to this browser", "sso",
                                  response=None, status="302", secured=False,
                                  extra_headers={"Location": {"description": "the provider's authorization endpoint", "schema": string},
                                                 "Set-Cookie": {"description": "__Host-rampart_sso (rampart_sso on plain-HTTP loopback): HttpOnly, SameSite=Lax, ten minutes", "schema": string}},
                                  params=[p("connection_id", uuid, "the connection (testing or active)", where="query", required=False),
                                          p("email", s(254), "or the person's address: the connection serving its verified domain", where="query", required=False),
                                          p("return_to", s(512), "a console path (/console/…) to go to afterwards", where="query", required=False)])},
 "/v1/auth/google/start": {"get": op("googleStart", "Sign in with Google (SSO-4): 302 to Google as for SSO; the answer comes to /v1/auth/sso/callback. The account is the one the Google account was linked to, or at the first time the one whose verified address is Google's verified address; 404 when the platform has no Google client", "sso",
                                     response=None, status="302", secured=False,
                                     extra_headers={"Location": {"description": "Google's authorization endpoint", "schema": string},
                                                    "Set-Cookie": {"description": "as /v1/auth/sso/start's", "schema": string}},
                                     params=[p("tenant_id", tenant_hex, "the organization to sign in to; by default the account's home", where="query", required=False),
                                             p("return_to", s(512), "a console path (/console/…) to go to afterwards", where="query", required=False)])},
 "/v1/auth/sso/callback": {"get": op("ssoCallback", "the provider's answer (SSO's or Google's), with the start's cookie: the password step's answer (tokens, or the MFA step), or the Google account a link from settings added; a refusal's errors.reason says which check failed. A browser (Accept: text/html) gets the console instead: its session cookies and 303 to return_to, the MFA step's page, or the refusal on the sign-in page", "sso",
                                     response={"oneOf": [ref("TokenReply"), ref("LinkedIdentity")]}, secured=False,
                                     params=[p("state", s(128), where="query", required=False), p("code", s(2048), where="query", required=False),
                                             p("iss", s(512), "RFC 9207: the issuer the answer comes from", where="query", required=False),
                                             p("error", s(128), "the provider's refusal instead of a code", where="query", required=False)])},
 "/v1/auth/login/mfa": {"post": op("loginMfa", "the second step of a sign-in with MFA: a TOTP or backup code", "auth", "LoginMfaRequest", "TokenReply", secured=False)},
 "/v1/auth/login/mfa/enroll": {"post": op("loginMfaEnroll", "MFA-7: enrol during a sign-in the tenant requires MFA for; the code step then confirms", "auth", "LoginMfaEnrollRequest", "MfaEnrollReply", secured=False)},
 "/v1/auth/token/refresh": {"post": op("refresh", "rotate the refresh token", "auth", "RefreshRequest", "TokenReply", secured=False)},
 "/v1/auth/password/reset/request": {"post": op("requestPasswordReset", "mail a reset link (the same answer for any address)", "auth", "RequestPasswordResetRequest", "Empty", secured=False)},
 "/v1/auth/password/reset/confirm": {"post": op("confirmPasswordReset", "set a new password with a reset token", "auth", "ConfirmPasswordResetRequest", "Empty", secured=False)},
 "/v1/auth/email/verify": {"post": op("verifyEmail", "spend an email verification token", "auth", "VerifyEmailRequest", "VerifyEmailReply", secured=False)},
 "/v1/auth/password/change": {"post": op("changePassword", "change my password; my other sessions end", "auth", "ChangePasswordRequest", "ChangePasswordReply")},
 "/v1/auth/logout": {"post": op("logout", "end this session", "auth", status="204")},
 "/v1/auth/sessions": {"get": op("listSessions", "my sessions", "auth", response="ListSessionsReply"),
                        "delete": op("revokeOtherSessions", "end all my sessions but this one", "auth", response="RevokeSessionsReply")},
 "/v1/auth/sessions/{id}": {"delete": op("revokeSession", "end one of my sessions", "auth", status="204", params=[p("id", uuid)])},
 "/v1/auth/mfa/totp/enroll": {"post": op("enrollTotp", "start TOTP enrolment, for the current password: a new secret, its otpauth URI and QR code; nothing changes until confirmed", "mfa", "MfaEnrollRequest", "MfaEnrollReply")},
 "/v1/auth/mfa/totp/confirm": {"post": op("confirmTotp", "turn MFA on with a current code; answers ten backup codes", "mfa", "MfaConfirmRequest", "MfaConfirmReply")},
 "/v1/auth/mfa": {"get": op("mfaStatus", "whether MFA is on, and the backup codes left", "mfa", response="MfaStatusReply"),
                  "delete": op("disableMfa", "turn MFA off, for a current code or an unused backup code", "mfa", "MfaProofRequest", "Empty")},
 "/v1/auth/mfa/backup-codes/regenerate": {"post": op("regenerateBackupCodes", "ten new backup codes for a current TOTP code; the old ones stop working", "mfa", "MfaProofRequest", "MfaConfirmReply")},
 "/v1/auth/whoami": {"get": op("whoami", "the caller, as its credential says", "auth", response="WhoAmIReply")},
 "/v1/auth/email/verification/resend": {"post": op("resendEmailVerification", "another verification mail while my address is unverified (3 an hour)", "auth", response="Empty", status="202")},
 "/v1/auth/tenants": {"get": op("listMyTenants", "the tenants I belong to, with my role and status in each", "auth", response="ListMembershipsReply")},
 "/v1/auth/step-up": {"post": op("stepUp", "prove it is you again (with MFA on, a code; without, the password): a new access token whose auth_time is now, for the actions that need a recent proof; the refresh token stays", "auth", "StepUpRequest", "TokenReply",
                                 description="Deleting a tenant and resetting a member's MFA answer 401 with `WWW-Authenticate: Bearer error=\"insufficient_user_authentication\"` and `errors.reason` step_up_required when the access token's `auth_time` is older than `errors.max_age` seconds (RFC 9470). Step up, then retry with the new access token.")},
 "/v1/auth/identities": {"get": op("listIdentities", "the ways in I linked to my account (Google)", "sso", response="ListIdentitiesReply")},
 "/v1/auth/identities/google/link": {"post": op("linkGoogle", "link my Google account (any address Google verified; one not linked to another account): the authorization URL to send the browser to, and the cookie binding it; the callback answers the link. Needs a recent proof", "sso", "LinkGoogleRequest", "LinkGoogleReply",
                                                extra_headers={"Set-Cookie": {"description": "as /v1/auth/sso/start's", "schema": string}})},
 "/v1/auth/identities/google": {"delete": op("unlinkGoogle", "unlink my Google account; 409 (reason last_way_in) while my account has no password or SSO to sign in with instead", "sso", status="204")},
 "/v1/auth/token/switch": {"post": op("switchTenant", "a session in another tenant I belong to, without the password again; its MFA policy, IP allowlist and SSO enforcement apply", "auth", "SwitchTenantRequest", "TokenReply")},
 "/v1/invitations/accept": {"post": op("acceptInvitation", "join the inviting tenant: a new person with name and password, or signed in with the token alone", "members", "JoinRequest", "JoinReply",
                                       secured=False, description="Without a credential, `name` and `password` create the account (the invited address, verified by the act). With a bearer access token, send only `token`: the signed-in user, whose address must be the invited one, joins.")},
 "/v1/tenants/{tenant_id}/invitations/{invitation_id}": {
     "delete": op("cancelInvitation", "cancel an open invitation: its token dies (members.manage)", "members", status="204", params=[T, p("invitation_id", uuid), consistency])},
 "/v1/tenants/{tenant_id}/invitations/{invitation_id}/resend": {
     "post": op("resendInvitation", "mail a new token with a new expiry; the old token dies (members.manage; a verified address)", "members", response="InviteMemberReply", params=[T, p("invitation_id", uuid), consistency])},
 "/v1/tenants/{tenant_id}": {
     "get": op("getTenant", "the tenant", "tenants", response="Tenant", params=[T]),
     "patch": op("updateTenant", "change name, plan or policies (settings.manage)", "tenants", "UpdateTenantRequest", "Tenant", params=[T, consistency]),
     "delete": op("deleteTenant", "delete the tenant (tenant.delete: owners; a recent proof, see /v1/auth/step-up)", "tenants", response="Tenant", status="202", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/ip-allowlist": {
     "get": op("getIpAllowlist", "the tenant's IP allowlist", "tenants", response="IpAllowlist", params=[T]),
     "put": op("setIpAllowlist", "replace the IP allowlist (settings.manage); your own address must stay inside", "tenants", "IpAllowlist", "IpAllowlist", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/members": {
     "get": op("listMembers", "members and open invitations", "members", response="ListMembersReply", params=[T]),
     "post": op("inviteMember", "invite a member (members.manage; AUTH-11: a verified address)", "members", "InviteMemberRequest", "InviteMemberReply", status="201", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/members/{user_id}": {
     "patch": op("updateMember", "change a member's role or status (members.manage)", "members", "UpdateMemberRequest", "MemberReply", params=[T, p("user_id", uuid), consistency], extra_headers=consistency_header),
     "delete": op("removeMember", "remove a member (members.manage)", "members", response="MemberReply", params=[T, p("user_id", uuid), consistency], extra_headers=consistency_header)},
 "/v1/tenants/{tenant_id}/members/{user_id}/mfa": {
     "delete": op("resetMemberMfa", "turn a member's MFA off, for one who lost phone and backup codes (members.manage; an owner's only by an owner; only in the member's home tenant; never one's own; a recent proof, see /v1/auth/step-up)", "members",
                  response="MfaResetReply", params=[T, p("user_id", uuid), consistency])},
 "/v1/tenants/{tenant_id}/members/{user_id}/isolate": {
     "post": op("isolateMember", "IR-1: disable a member at once, with the reason; their sessions, refresh tokens and API keys here revoked before the answer (members.manage; an owner only by an owner)", "members",
                "IsolateRequest", "IsolationReply", params=[T, p("user_id", uuid), consistency]),
     "delete": op("liftMemberIsolation", "IR-1: the member may sign in again; what was revoked stays revoked (members.manage)", "members",
                  response="IsolationReply", params=[T, p("user_id", uuid), consistency])},
 "/v1/tenants/{tenant_id}/isolate": {
     "post": op("isolateTenant", "IR-1: suspend the tenant at once: every session and API key revoked, webhook deliveries held, sign-in refused (owners; platform super-admins for any tenant)", "tenants",
                "IsolateRequest", "IsolationReply", params=[T]),
     "delete": op("liftTenantIsolation", "IR-1: active again, deliveries resume (platform super-admins only: the owners are locked out too)", "tenants",
                  response="IsolationReply", params=[T])},
 "/v1/tenants/{tenant_id}/api-keys": {
     "get": op("listApiKeys", "API keys: all for owners and admins, one's own for members", "api-keys", response="ListApiKeysReply",
               params=[T, p("unused_for_days", {"type": "integer", "minimum": 0, "maximum": 3650}, where="query", required=False)]),
     "post": op("createApiKey", "create an API key; the secret is shown once (AUTH-11: a verified address; SSO-2: where SSO is enforced, a session signed in through it or a break-glass owner's)", "api-keys", "CreateApiKeyRequest", "CreateApiKeyReply", status="201", params=[T])},
 "/v1/tenants/{tenant_id}/api-keys/{id}": {"delete": op("revokeApiKey", "revoke an API key", "api-keys", status="204", params=[T, p("id", uuid)])},
 "/v1/tenants/{tenant_id}/api-keys/{id}/rotate": {"post": op("rotateApiKey", "replace an API key; the old one works for its grace period (SSO-2 as for create)", "api-keys", "RotateApiKeyRequest", "CreateApiKeyReply", status="201", params=[T, p("id", uuid)])},
 "/v1/tenants/{tenant_id}/resources/{type}/{id}/roles": {
     "get": op("listResourceRoles", "who holds which role on a resource", "permissions", response="ListAccessReply", params=[T, p("type", {"type": "string", "enum": ["boards"]}, "the resource type"), p("id", s(64, pattern="^[A-Za-z0-9_-]+$"), "the resource's ID"), consistency])},
 "/v1/tenants/{tenant_id}/resources/{type}/{id}/roles/{principal_id}": {
     "put": op("setResourceRole", "grant a member a role on a resource (boards.share there)", "permissions", "ResourceRoleBody", "PermissionsWriteReply",
               params=[T, p("type", {"type": "string", "enum": ["boards"]}, "the resource type"), p("id", s(64, pattern="^[A-Za-z0-9_-]+$"), "the resource's ID"), p("principal_id", uuid)], extra_headers=consistency_header),
     "delete": op("removeResourceRole", "take a member's role on a resource away", "permissions", response="PermissionsWriteReply",
                  params=[T, p("type", {"type": "string", "enum": ["boards"]}, "the resource type"), p("id", s(64, pattern="^[A-Za-z0-9_-]+$"), "the resource's ID"), p("principal_id", uuid)], extra_headers=consistency_header)},
 "/v1/tenants/{tenant_id}/permissions/check": {"post": op("checkPermission", "may a principal do an action on a resource? With the reason", "permissions", "PermissionCheckBody", "CheckReply", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/access-review": {"get": op("accessReview", "who has access to what (members.manage)", "permissions",
                                                      response={"oneOf": [ref("AccessReviewReply")]}, params=[T, p("format", {"type": "string", "enum": ["json", "csv"]}, where="query", required=False), consistency])},
 "/v1/tenants/{tenant_id}/access-review/complete": {"post": op("completeAccessReview", "record a completed review (members.manage)", "permissions", "CompleteAccessReviewRequest", "AccessReviewReply", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/audit-events": {"get": op("queryAuditEvents", "the tenant's audit events, newest first (audit.read)", "audit", response="AuditQueryReply",
                                                    params=[T] + filters + [p("cursor", s(512), where="query", required=False), p("page_size", {"type": "integer", "minimum": 1, "maximum": 500}, where="query", required=False), consistency])},
 "/v1/tenants/{tenant_id}/audit-events/export": {"get": op("exportAuditEvents", "every matching event, oldest first, streamed (audit.read)", "audit", response={"type": "string"}, content_type="application/jsonl",
                                                           params=[T] + filters + [p("format", {"type": "string", "enum": ["json", "csv"]}, where="query", required=False), consistency])},
 "/v1/tenants/{tenant_id}/audit-events/verify": {"get": op("verifyAuditChain", "verify the tenant's hash chain and signed checkpoints (audit.read)", "audit", response="AuditVerifyReply", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/sso/connections": {
     "get": op("listSsoConnections", "the tenant's SSO connections, oldest first (sso.manage)", "sso", response="ListSsoConnectionsReply", params=[T, consistency]),
     "post": op("createSsoConnection", "a new connection, in draft (sso.manage; a recent proof)", "sso", "CreateSsoConnectionRequest", "SsoConnectionReply", status="201", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/sso/connections/{connection_id}": {
     "get": op("getSsoConnection", "one connection (sso.manage)", "sso", response="SsoConnectionReply", params=[T, C, consistency]),
     "patch": op("updateSsoConnection", "change a connection's fields or state: draft, testing, active (sso.manage; a recent proof)", "sso", "UpdateSsoConnectionRequest", "SsoConnectionReply", params=[T, C, consistency]),
     "delete": op("deleteSsoConnection", "remove a connection (sso.manage; a recent proof)", "sso", response="SsoConnectionReply", params=[T, C, consistency])},
 "/v1/tenants/{tenant_id}/domains": {
     "get": op("listSsoDomains", "the domains the tenant claimed, with the TXT record each needs (sso.manage)", "sso", response="ListSsoDomainsReply", params=[T, consistency]),
     "post": op("addSsoDomain", "claim a domain: the TXT record to publish at _rampart-challenge.<domain> (sso.manage; a recent proof)", "sso", "AddSsoDomainRequest", "SsoDomainReply", status="201", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/domains/{domain}/verify": {
     "post": op("verifySsoDomain", "look the TXT record up now; 409 while it is not there (sso.manage)", "sso", response="SsoDomainReply", params=[T, D, consistency])},
 "/v1/tenants/{tenant_id}/domains/{domain}": {
     "delete": op("removeSsoDomain", "drop a claim; refused while a connection lists the domain (sso.manage; a recent proof)", "sso", response="SsoDomainReply", params=[T, D, consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints": {
     "get": op("listWebhookEndpoints", "the tenant's webhook endpoints (webhooks.manage)", "webhooks", response="ListEndpointsReply", params=[T, consistency]),
     "post": op("createWebhookEndpoint", "register an endpoint; the signing secret is answered once (webhooks.manage; AUTH-11: a verified address)", "webhooks", "CreateEndpointRequest", "CreateEndpointReply", status="201", params=[T, consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints/{endpoint_id}": {
     "get": op("getWebhookEndpoint", "one endpoint (webhooks.manage)", "webhooks", response="EndpointReply", params=[T, E, consistency]),
     "patch": op("updateWebhookEndpoint", "change an endpoint; enabling it clears the failure record (webhooks.manage; AUTH-11: a verified address)", "webhooks", "UpdateEndpointRequest", "EndpointReply", params=[T, E, consistency]),
     "delete": op("deleteWebhookEndpoint", "remove an endpoint and its deliveries (webhooks.manage)", "webhooks", response="EndpointReply", params=[T, E, consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints/{endpoint_id}/secret/rotate": {
     "post": op("rotateWebhookSecret", "a new signing secret; the old one signs beside it for the grace period (webhooks.manage)", "webhooks", "RotateSecretRequest", "CreateEndpointReply", params=[T, E, consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints/{endpoint_id}/test": {
     "post": op("testWebhookEndpoint", "queue a webhook.test event for this endpoint alone (webhooks.manage)", "webhooks", response="DeliveryReply", status="202", params=[T, E, consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints/{endpoint_id}/deliveries": {
     "get": op("listWebhookDeliveries", "the endpoint's deliveries, newest first (webhooks.manage)", "webhooks", response="ListDeliveriesReply",
               params=[T, E, p("cursor", s(64), where="query", required=False), p("page_size", {"type": "integer", "minimum": 1, "maximum": 100}, where="query", required=False),
                       p("status", {"type": "string", "enum": ["DELIVERY_STATUS_PENDING", "DELIVERY_STATUS_SUCCEEDED", "DELIVERY_STATUS_DEAD"]}, where="query", required=False), consistency])},
 "/v1/tenants/{tenant_id}/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver": {
     "post": op("redeliverWebhook", "send a delivery again now, from the start of the retry schedule, with the same event ID (webhooks.manage)", "webhooks", response="DeliveryReply", status="202",
                params=[T, E, p("delivery_id", uuid, "a delivery of this endpoint"), consistency])},
 "/v1/inbound/{provider}": {
     "post": op("receiveInbound", "WH-5: a provider's event, signed as Stripe signs (t=…,v1=…, 5 minutes' tolerance); accepted once per event ID", "webhooks",
                {"type": "object", "properties": {"id": s(255)}, "required": ["id"]}, "InboundReply", secured=False,
                params=[p("provider", s(32, pattern="^[a-z0-9_-]{1,32}$"), "a configured provider, e.g. stripe"),
                        p("Stripe-Signature", s(4096), "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">", where="header")])},
 "/v1/admin/users/{user_id}/isolate": {
     "post": op("isolateUser", "IR-1: disable a person everywhere: every session, refresh token and API key in every tenant revoked, sign-in and reset refused (platform super-admins)", "admin",
                "IsolateRequest", "UserIsolationReply", params=[p("user_id", uuid)]),
     "delete": op("liftUserIsolation", "IR-1: the person may sign in again (platform super-admins)", "admin", response="UserIsolationReply", params=[p("user_id", uuid)])},
 "/v1/admin/bans": {"get": op("listBans", "networks banned by fail2ban (platform super-admins)", "admin", response="ListBansReply")},
 "/v1/admin/bans/{ip}": {
     "get": op("getBan", "the ban covering an address (platform super-admins)", "admin", response="Ban", params=[p("ip", {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]})]),
     "delete": op("liftBan", "lift the ban covering an address (platform super-admins)", "admin", response="UnbanReply", params=[p("ip", {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]})])},
}
# The access review also answers CSV.
paths["/v1/tenants/{tenant_id}/access-review"]["get"]["responses"]["200"]["content"]["text/csv; charset=utf-8"] = {"schema": {"type": "string"}}
paths["/v1/tenants/{tenant_id}/audit-events/export"]["get"]["responses"]["200"]["content"]["text/csv; charset=utf-8"] = {"schema": {"type": "string"}}
paths["/v1/tenants/{tenant_id}/access-review"]["get"]["responses"]["200"]["content"]["application/json"] = {"schema": ref("AccessReviewReply")}

doc = {
 "openapi": "3.1.0",
 "info": {"title": "Rampart", "version": "1.0.0",
          "description": "The public REST API of Rampart's gateway (SPEC section 14). JSON bodies with snake_case fields; unknown fields are refused. Errors are RFC 9457 problem+json. Every response carries X-Request-Id and the security headers; limited responses carry the IETF RateLimit fields. Fields holding their default value (false, 0, empty) are left out, as proto3's JSON mapping does. Enumerations use their proto names (MEMBER_ROLE_ADMIN).",
          "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}},
 "servers": [{"url": "/"}],
 "tags": [{"name": n} for n in ["operations", "auth", "mfa", "tenants", "members", "api-keys", "permissions", "audit", "webhooks", "sso", "admin"]],
 "paths": paths,
 "components": {
   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an access token (JWT, EdDSA) from login, or an API key (rk_…) where the route takes one"}},
   "schemas": schemas, "responses": responses,
   "headers": {
     "X-Request-Id": {"description": "the request's ID: the client's when well-formed, else a new one", "schema": string},
     "RateLimit-Policy": {"description": "draft-ietf-httpapi-ratelimit-headers: each policy the request met, e.g. \"api\";q=60;w=60", "schema": string},
     "RateLimit": {"description": "draft-ietf-httpapi-ratelimit-headers: what is left of each, e.g. \"api\";r=12;t=41", "schema": string},
     "Retry-After": {"description": "seconds to wait before a retry can succeed", "schema": {"type": "integer", "minimum": 1}}}},
}
print(json.dumps(doc, indent=2, ensure_ascii=False))
