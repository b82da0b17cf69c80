"""infra/: the Bicep parses, deploys what the issue asks for, grants no more than it must,
sets every setting the code reads (and none it does not), and holds no secret.

All offline: tree-sitter-bicep for syntax, pycep-parser for a model to assert on (see
tests/support/bicep.py). Type and schema validation needs `bicep build`, which is not here.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from lark.exceptions import LarkError

from shared.host import ncrontab
from shared.settings import DEFAULT_PROBE_SCHEDULE, ProbeSettings, Settings
from shared.upstream.config import parse_config
from tests.support.bicep import (
    INFRA,
    MAIN,
    ROOT,
    Resource,
    Setting,
    accessed,
    array_items,
    bicep_files,
    calls_of,
    decorators,
    function,
    key,
    model,
    module_calls,
    object_entries,
    operator,
    parameter,
    resolve,
    resource,
    resources,
    syntax_errors,
    the,
    variable,
)

MODULES = INFRA / "modules"
APP = MODULES / "app.bicep"
STORAGE = MODULES / "storage.bicep"
KEYVAULT = MODULES / "keyvault.bicep"
MONITORING = MODULES / "monitoring.bicep"
REDIS = MODULES / "redis.bicep"
CONTENT_SAFETY = MODULES / "content-safety.bicep"
NETWORK = MODULES / "network.bicep"
ENDPOINT = MODULES / "private-endpoint.bicep"
RBAC = MODULES / "rbac.bicep"
WORKBOOK = MODULES / "workbook.bicep"
WORKBOOK_JSON = INFRA / "workbook" / "tollgate.workbook.json"
PARAMETERS = INFRA / "main.parameters.json"

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42ee-ab49-97f8e6dd9d8c"
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KV_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
COGNITIVE_SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
ALLOWED_ROLES = {
    BLOB_DATA_OWNER,
    BLOB_DATA_CONTRIBUTOR,
    BLOB_DATA_READER,
    KV_SECRETS_USER,
    KV_SECRETS_OFFICER,
    METRICS_PUBLISHER,
    COGNITIVE_SERVICES_USER,
}

# Settings the code reads that the template deliberately does not set: they only make sense on
# a laptop, in CI or on premises, or their default is right in Azure. The README's "Running in
# Azure" section lists each of them.
LOCAL_ONLY = {
    "TOLLGATE_CONFIG",  # a file path; Azure gets TOLLGATE_CONFIG_JSON
    "TOLLGATE_SIMULATOR_URL",  # the built-in simulator, used only without a configuration
    "TOLLGATE_STORAGE_CONNECTION_STRING",  # Azurite or key-based storage; Azure uses identity
    "TOLLGATE_KEYVAULT_CA_FILE",  # a private CA on premises
    "TOLLGATE_PROMETHEUS",  # /metrics for an on-premises Prometheus; Azure has Azure Monitor
    "TOLLGATE_METRICS_NETWORKS",  # who may read /metrics
    "TOLLGATE_ADMIN_KEY_SECRET",  # the admin key for /metrics
    "TOLLGATE_STATUS_PAGE",  # /status, the operators' page; off unless asked for
    "TOLLGATE_ADMIN_ROLE",  # the Entra ID app role that opens /status; the default suits Azure
    "TOLLGATE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE",  # only for a vault behind another host name
    "TOLLGATE_TIKTOKEN_CACHE_DIR",  # default: a private folder under /tmp, writable on Flex
    "TOLLGATE_BENCH_KEY",  # `tollgate bench` on an operator's machine
    "TOLLGATE_LOG_FORMAT",  # `tollgate serve`'s own log handler; in Azure the worker owns logs
    "TOLLGATE_REQUEST_DEADLINE_SECONDS",  # `tollgate serve`'s slow clients; Azure's front end
    "TOLLGATE_MAX_CONNECTIONS",  # likewise
    "TOLLGATE_AUDIT_LOG",  # written by the `tollgate` CLI on an operator's machine
    "TOLLGATE_ACTOR",  # who the operator is, for the audit log
    "TOLLGATE_ENTRA_JWKS_URL",  # only for a national cloud or a test key server
    "TOLLGATE_CONTENT_SAFETY_KEY_SECRET",  # a key-based account; Azure's signs in with identity
    "TOLLGATE_CONTENT_SAFETY_CA_FILE",  # a private CA on premises
}
# Upstream keys from the environment (TOLLGATE_SECRET_<NAME>): in Azure they come from Key Vault.
LOCAL_SECRET_PREFIX = "TOLLGATE_SECRET_"
# Set by App Service itself.
PLATFORM = {"WEBSITE_HOSTNAME", "WEBSITE_INSTANCE_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"}
# Settings the template sets for the Functions host, not for Tollgate's code.
HOST_SETTING = re.compile(
    r"^(AzureWebJobsStorage__\w+|APPLICATIONINSIGHTS_\w+|PYTHON_ENABLE_INIT_INDEXING)$"
)
# App settings Flex Consumption rejects or ignores (runtime and scale live in functionAppConfig).
FLEX_REJECTS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_VNET_ROUTE_ALL",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "AzureWebJobsStorage",  # a connection string; host storage is identity-based here
}


# --- syntax and models ---------------------------------------------------------------------


def test_the_template_is_split_into_modules() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert {
        "main.bicep",
        "modules/app.bicep",
        "modules/storage.bicep",
        "modules/keyvault.bicep",
        "modules/monitoring.bicep",
        "modules/redis.bicep",
        "modules/content-safety.bicep",
        "modules/network.bicep",
        "modules/private-endpoint.bicep",
        "modules/rbac.bicep",
        "modules/workbook.bicep",
    } <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses_without_error_nodes(path: Path) -> None:
    assert syntax_errors(path) == []


def test_a_broken_file_fails_both_checks_with_its_line_and_column(tmp_path: Path) -> None:
    text = KEYVAULT.read_text().replace(
        "enableRbacAuthorization: true", "enableRbacAuthorization: ("
    )
    bad = tmp_path / "broken.bicep"
    bad.write_text(text)
    line = text.splitlines().index("    enableRbacAuthorization: (") + 1
    errors = syntax_errors(bad)
    assert errors and errors[0].startswith(f"{bad}:{line}:28: syntax error"), errors
    with pytest.raises(LarkError):
        model(bad)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_converts_to_a_model(path: Path) -> None:
    parsed = model(path)
    assert parsed["globals"]["scope"]["value"] == "resourceGroup"  # nothing subscription-wide
    assert parsed.get("resources") or parsed.get("modules")


def test_modules_are_local_files_and_all_used() -> None:
    used = set()
    for path in bicep_files():
        for spec in model(path).get("modules", {}).values():
            assert spec["type"] == "local", f"{path.name}: registry module {spec['detail']}"
            target = (path.parent / spec["detail"]["path"]).resolve()
            assert target.is_file(), f"{path.name}: {target} does not exist"
            used.add(target)
    assert used == {p.resolve() for p in bicep_files() if p != MAIN}
    for path in bicep_files():
        assert not re.search(r"'(br|ts)[:/]", path.read_text()), f"{path.name}: registry module"


# --- the Function App ----------------------------------------------------------------------


def test_a_flex_consumption_python_app_with_a_user_assigned_identity() -> None:
    plan = the(APP, "Microsoft.Web/serverfarms").body
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True

    site = the(APP, "Microsoft.Web/sites")
    assert site.body["kind"] == "functionapp,linux"
    assert site.body["identity"]["type"] == "UserAssigned"
    assert list(site.body["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    config = site.properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }

    identity = the(MAIN, "Microsoft.ManagedIdentity/userAssignedIdentities")
    (call,) = calls_of(APP)
    assert accessed(call["params"]["identityId"]) == f"{identity.symbol}.id"
    assert accessed(call["params"]["identityClientId"]) == f"{identity.symbol}.properties.clientId"


@pytest.mark.parametrize("path", [MAIN, APP], ids=["main", "app"])
def test_the_python_version_is_a_parameter(path: Path) -> None:
    spec = parameter(path, "pythonVersion")
    assert spec["type"] == "string"
    assert spec["default"] == "3.11"
    allowed = decorators(path, "pythonVersion")["allowed"]
    # pyproject.toml: requires-python >= 3.11
    assert allowed and all(tuple(map(int, v.split("."))) >= (3, 11) for v in allowed)
    (call,) = calls_of(APP)
    assert call["params"]["pythonVersion"] == "pythonVersion"


def test_https_only_tls_1_2_no_ftp_no_basic_publishing_credentials() -> None:
    site = the(APP, "Microsoft.Web/sites").properties
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["siteConfig"]["scmMinTlsVersion"] == "1.2"
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    policies = {
        r.body["name"]: r.properties
        for r in resources(APP, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    }
    assert policies == {"ftp": {"allow": False}, "scm": {"allow": False}}


def test_host_storage_is_identity_based() -> None:
    settings = app_settings()
    assert resolve(settings["AzureWebJobsStorage__credential"]).value == "managedidentity"
    client_id = resolve(settings["AzureWebJobsStorage__clientId"])
    assert accessed(client_id.value) == "identity.properties.clientId"
    account = resolve(settings["AzureWebJobsStorage__accountName"])
    assert accessed(account.value) == "hostStorage.outputs.name"
    assert not any(
        "ConnectionString" in name
        for name in settings
        if name != "APPLICATIONINSIGHTS_CONNECTION_STRING"
    )


def test_no_setting_flex_consumption_rejects() -> None:
    assert not FLEX_REJECTS & set(app_settings())


def test_python_streaming_and_entra_only_telemetry_settings() -> None:
    settings = app_settings()
    assert settings["PYTHON_ENABLE_INIT_INDEXING"].value == "1"
    auth = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].value
    assert auth == "ClientId=${identityClientId};Authorization=AAD"
    connection = resolve(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"])
    assert accessed(connection.value) == "monitoring.outputs.connectionString"
    assert "secure" in decorators(APP, "appInsightsConnectionString")


def test_the_timer_schedule_setting_is_a_valid_ncrontab_parameter() -> None:
    schedule = resolve(app_settings()["TOLLGATE_PROBE_SCHEDULE"])
    assert (schedule.value, schedule.file) == ("probeSchedule", MAIN)
    default = parameter(MAIN, "probeSchedule")["default"]
    assert default == DEFAULT_PROBE_SCHEDULE
    ncrontab.parse(default)
    ncrontab.parse(parameters_file()["probeSchedule"]["value"])
    enabled = resolve(app_settings()["TOLLGATE_PROBE_ENABLED"]).value
    assert operator(enabled, "conditional") == {
        "condition": "probeEnabled",
        "true_value": "true",
        "false_value": "false",
    }


def test_tunables_default_to_the_codes_own_defaults() -> None:
    tunables = object_entries("tunableDefaults", MAIN)
    values = {name: setting.value for name, setting in tunables.items()}
    assert all(isinstance(v, str) for v in values.values())
    assert Settings.from_env(values) == Settings.from_env({})
    # ... and an operator's overrides (by setting name) win over everything else.
    union = function(calls_of(APP)[0]["params"]["gatewaySettings"], "union")
    assert union is not None
    args = list(union.values())
    assert (args[0], args[-1]) == ("tunableDefaults", "tuning")
    assert parameter(MAIN, "tuning") == {"decorators": _any(), "type": "object", "default": {}}


def test_probe_parameters_default_to_the_codes_own_defaults() -> None:
    probe = ProbeSettings.from_env({})
    assert parameter(MAIN, "probeEnabled")["default"] is probe.enabled
    assert parameter(MAIN, "probeRequests")["default"] == probe.requests
    assert parameter(MAIN, "probeModels")["default"] == ",".join(probe.models)
    assert parameter(MAIN, "probeKeySecretName")["default"] == probe.key_secret
    assert parameter(MAIN, "quotaTimezone")["default"] == Settings.from_env({}).quota_timezone
    assert parameter(MAIN, "logLevel")["default"] == Settings.from_env({}).log_level
    assert parameter(MAIN, "redisFailurePolicy")["default"] == "open"


def test_azure_points_the_stores_at_blob_urls_and_the_spool_at_tmp() -> None:
    settings = app_settings()
    registry = resolve(settings["TOLLGATE_REGISTRY"]).value
    assert registry == "${dataStorage.outputs.blobEndpoint}${registryContainer}/systems.json"
    results = resolve(settings["TOLLGATE_PROBE_RESULTS"]).value
    assert results == "${dataStorage.outputs.blobEndpoint}${probeResultsContainer}"
    # The app's own folder (the mounted package) is read-only on Flex Consumption.
    assert resolve(settings["TOLLGATE_PROBE_SPOOL"]).value.startswith("/tmp/")
    assert accessed(resolve(settings["TOLLGATE_KEYVAULT_URL"]).value) == "keyVault.outputs.uri"
    assert accessed(resolve(settings["AZURE_CLIENT_ID"]).value) == "identity.properties.clientId"
    config = resolve(settings["TOLLGATE_CONFIG_JSON"]).value
    assert function(config, "string") == {"value_to_convert": "upstreams"}
    assert parameter(MAIN, "upstreams")["type"] == "object"
    url = resolve(settings["TOLLGATE_PROBE_GATEWAY_URL"]).value
    branches = operator(url, "conditional")
    assert branches and branches["true_value"] == "https://${site.properties.defaultHostName}"


# --- settings: what the code reads vs what the template sets -------------------------------


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name it was asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_the_code_reads() -> set[str]:
    env = RecordingEnv()
    Settings.from_env(env)
    ProbeSettings.from_env(env)
    names = set(env.asked)
    # Settings read outside settings.py (tokens, bench, secrets): every string constant in
    # shared/ that is a whole setting name.
    pattern = re.compile(r"(TOLLGATE_[A-Z0-9_]*[A-Z0-9]|AZURE_CLIENT_ID)")
    for path in (ROOT / "shared").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and pattern.fullmatch(node.value)
            ):
                names.add(node.value)
    return names


def app_settings() -> dict[str, Setting]:
    (config,) = [
        r for r in resources(APP, "Microsoft.Web/sites/config") if r.body["name"] == "appsettings"
    ]
    return object_entries(config.properties, APP)


def test_the_recording_environment_sees_every_settings_read() -> None:
    read = settings_the_code_reads()
    assert {"TOLLGATE_REGISTRY", "TOLLGATE_PROBE_SCHEDULE", "AZURE_CLIENT_ID"} <= read
    assert {"TOLLGATE_TIKTOKEN_CACHE_DIR", "TOLLGATE_BENCH_KEY"} <= read  # outside settings.py


def test_every_setting_the_code_reads_is_set_or_documented_as_local_only() -> None:
    set_by_template = set(app_settings())
    missing = {
        name
        for name in settings_the_code_reads()
        if name not in set_by_template
        and name not in LOCAL_ONLY
        and name not in PLATFORM
        and not (name.startswith(LOCAL_SECRET_PREFIX) and name not in _settings_py_reads())
    }
    assert not missing, f"set these in infra/main.bicep or list them as local-only: {missing}"


def test_the_template_sets_nothing_the_code_does_not_read() -> None:
    read = settings_the_code_reads()
    unread = {n for n in app_settings() if n not in read and not HOST_SETTING.match(n)}
    assert not unread, f"the code reads none of {unread}"


def test_the_template_sets_no_local_only_setting_and_no_upstream_key() -> None:
    names = set(app_settings())
    assert not names & LOCAL_ONLY
    assert not {n for n in names if n.startswith(LOCAL_SECRET_PREFIX)} - _settings_py_reads()


def test_local_only_settings_are_documented_in_the_deployment_guide() -> None:
    section = readme_section("Running in Azure")
    for name in [*sorted(LOCAL_ONLY), f"{LOCAL_SECRET_PREFIX}<NAME>"]:
        assert f"`{name}`" in section, f"README 'Running in Azure' does not mention {name}"


def _settings_py_reads() -> set[str]:
    env = RecordingEnv()
    Settings.from_env(env)
    ProbeSettings.from_env(env)
    return env.asked


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


# --- storage -------------------------------------------------------------------------------


def test_storage_accounts_take_no_shared_keys_and_no_anonymous_reads() -> None:
    accounts = [r for r in resources(type_="Microsoft.Storage/storageAccounts") if not r.existing]
    assert [a.file for a in accounts] == [STORAGE]
    props = accounts[0].properties
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["defaultToOAuthAuthentication"] is True
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert len(calls_of(STORAGE)) == 2  # host storage and data storage
    for path in INFRA.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"\blist(Keys|AccountSas|ServiceSas|ConnectionStrings)\(", text)


def test_containers_each_with_a_retention_rule_except_the_two_that_must_not_expire() -> None:
    calls = {c["params"]["name"]: c for c in calls_of(STORAGE)}
    host = calls["hostStorageName"]["params"]
    data = calls["dataStorageName"]["params"]

    host_containers = {_container(s): s for s in array_items(host["containers"], MAIN)}
    assert list(host_containers) == ["app-package"]
    assert _days(host_containers["app-package"]) == 0  # Flex reads the package at every start

    data_containers = {_container(s): s for s in array_items(data["containers"], MAIN)}
    assert set(data_containers) == {"registry", "probe-results", "usage", "audit", "content-logs"}
    assert _days(data_containers.pop("registry")) == 0  # the live registry never expires
    for name, entry in data_containers.items():
        days = _days(entry)
        assert isinstance(days, str), f"{name}: retention must be a parameter"
        assert parameter(MAIN, days)["type"] == "int"
        assert parameter(MAIN, days)["default"] > 0
        assert decorators(MAIN, days)["min_value"] >= 1

    # Earlier registry states are recoverable through blob soft delete instead.
    assert data["blobSoftDeleteDays"] == "blobSoftDeleteDays"
    assert decorators(MAIN, "blobSoftDeleteDays")["min_value"] >= 1
    service = the(STORAGE, "Microsoft.Storage/storageAccounts/blobServices").properties
    assert service["deleteRetentionPolicy"] == "softDelete"


def test_lifecycle_rules_expire_by_age_within_their_own_container() -> None:
    expiring = variable(STORAGE, "expiring")
    args = function(expiring, "filter")
    assert args and args["input_array"] == "containers"
    rules = variable(STORAGE, "rules")
    assert rules["loop_type"]["detail"]["array_name"] == "expiring"
    rule = rules["config"]
    assert rule["type"] == "Lifecycle" and rule["enabled"] is True
    assert rule["definition"]["filters"]["prefixMatch"] == ["${container.name}/"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert accessed(delete["daysAfterModificationGreaterThan"]) == "container.deleteAfterDays"
    policy = the(STORAGE, "Microsoft.Storage/storageAccounts/managementPolicies")
    assert policy.properties["policy"]["rules"] == "rules"


def _container(entry: Setting) -> str:
    name = resolve(Setting(entry.value["name"], entry.file)).value
    assert isinstance(name, str)
    return name


def _days(entry: Setting) -> Any:
    return entry.value["deleteAfterDays"]


# --- Key Vault, monitoring, Redis ----------------------------------------------------------


def test_key_vault_uses_rbac_with_soft_delete_and_purge_protection() -> None:
    vault = the(KEYVAULT, "Microsoft.KeyVault/vaults").properties
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["softDeleteRetentionInDays"] == "softDeleteRetentionDays"
    assert "accessPolicies" not in vault
    assert vault["enabledForTemplateDeployment"] is False


def test_application_insights_is_workspace_based_with_local_auth_disabled() -> None:
    insights = the(MONITORING, "Microsoft.Insights/components").properties
    assert insights["DisableLocalAuth"] is True
    workspace = the(MONITORING, "Microsoft.OperationalInsights/workspaces")
    assert accessed(insights["WorkspaceResourceId"]) == f"{workspace.symbol}.id"


def test_redis_is_optional_and_signs_in_with_entra_id_only() -> None:
    cache = the(REDIS, "Microsoft.Cache/redis").properties
    assert {key(k): v for k, v in cache["redisConfiguration"].items()} == {"aad-enabled": "true"}
    assert cache["disableAccessKeyAuthentication"] is True
    assert cache["enableNonSslPort"] is False
    assert cache["minimumTlsVersion"] == "1.2"
    access = the(REDIS, "Microsoft.Cache/redis/accessPolicyAssignments").properties
    assert access["accessPolicyName"] == "Data Contributor"
    assert access["objectId"] == "principalId"

    (call,) = calls_of(REDIS)
    assert call["condition"] == "redisEnabled"
    assert accessed(call["params"]["principalId"]) == "identity.properties.principalId"

    gateway = function(calls_of(APP)[0]["params"]["gatewaySettings"], "union")
    assert gateway is not None
    assert operator(gateway["arg_3"], "conditional") == {
        "condition": "redisEnabled",
        "true_value": "redisSettings",
        "false_value": {},
    }
    redis = object_entries("redisSettings", MAIN)
    assert redis["TOLLGATE_REDIS_AUTH"].value == "entra"
    assert accessed(redis["TOLLGATE_REDIS_USERNAME"].value) == "identity.properties.principalId"
    assert redis["TOLLGATE_REDIS_URL"].value.startswith("rediss://")
    assert redis["TOLLGATE_REDIS_URL"].value.endswith(":6380/0")
    assert redis["TOLLGATE_REDIS_FAILURE_POLICY"].value == "redisFailurePolicy"


def test_content_safety_is_optional_and_signs_in_with_entra_id_only() -> None:
    assert parameter(MAIN, "contentSafety") == {
        "decorators": _any(),
        "type": "bool",
        "default": False,
    }
    account = the(CONTENT_SAFETY, "Microsoft.CognitiveServices/accounts")
    assert account.body["kind"] == "ContentSafety"
    assert account.body["sku"] == {"name": "S0"}
    props = account.properties
    assert props["disableLocalAuth"] is True
    # Microsoft Entra ID sign-in needs a custom subdomain: <name>.cognitiveservices.azure.com.
    assert props["customSubDomainName"] == "name"
    assert props["publicNetworkAccess"] == "publicNetworkAccess"
    acls = props["networkAcls"]
    assert acls["defaultAction"] == "defaultAction"
    assert (acls["bypass"], acls["ipRules"], acls["virtualNetworkRules"]) == ("None", [], [])

    (call,) = calls_of(CONTENT_SAFETY)
    assert call["condition"] == "contentSafety"
    # Internal only: no public endpoint, and a firewall that denies whatever gets there.
    assert call["params"]["publicNetworkAccess"] == "publicAccess"
    assert call["params"]["defaultAction"] == "firewallDefault"
    assert operator(variable(MAIN, "firewallDefault"), "conditional") == {
        "condition": "internalOnly",
        "true_value": "Deny",
        "false_value": "Allow",
    }
    (endpoint,) = [c for c in calls_of(ENDPOINT) if c["params"]["groupId"] == "account"]
    assert operator(endpoint["condition"], "and") == {
        "operand_1": "internalOnly",
        "operand_2": "contentSafety",
    }
    assert endpoint["params"]["subnetId"] == "endpointSubnetId"
    target = function(endpoint["params"]["targetId"], "resource_id")
    assert target is not None
    assert target["resource_type"] == "Microsoft.CognitiveServices/accounts"
    assert target["resource_name_1"] == call["params"]["name"] == "contentSafetyName"
    zone = function(endpoint["params"]["dnsZoneId"], "resource_id")
    assert zone is not None and zone["resource_type"] == "Microsoft.Network/privateDnsZones"
    index = operator(zone["resource_name_1"], "index_accessor")
    assert index and index["operand_1"] == "privateDnsZoneNames"
    zones = variable(MAIN, "privateDnsZoneNames")
    assert zones[int(index["operand_2"])] == "privatelink.cognitiveservices.azure.com"
    (network,) = calls_of(NETWORK)
    assert network["params"]["privateDnsZoneNames"] == "privateDnsZoneNames"  # linked to the VNet

    # The role goes to the account main.bicep deploys, only when it does.
    (rbac,) = calls_of(RBAC)
    assert rbac["params"]["contentSafetyEnabled"] == "contentSafety"
    assert rbac["params"]["contentSafetyAccountName"] == "contentSafetyName"
    assert resource(RBAC, "appContentSafety").config["condition"] == "contentSafetyEnabled"
    assert resource(RBAC, "contentSafety").body["name"] == "contentSafetyAccountName"

    # The endpoint setting comes from the resource (empty: local checks only); no key is set.
    endpoint_setting = resolve(app_settings()["TOLLGATE_CONTENT_SAFETY_ENDPOINT"]).value
    branches = operator(endpoint_setting, "conditional")
    assert branches and branches["condition"] == "contentSafety"
    assert accessed(branches["true_value"]) == "contentSafetyAccount.outputs.endpoint"
    assert branches["false_value"] == ""
    output = model(CONTENT_SAFETY)["outputs"]["endpoint"]["value"]
    assert accessed(output) == f"{account.symbol}.properties.endpoint"
    assert "TOLLGATE_CONTENT_SAFETY_KEY_SECRET" not in app_settings()
    timeout = object_entries("tunableDefaults", MAIN)["TOLLGATE_CONTENT_SAFETY_TIMEOUT_SECONDS"]
    assert timeout.value == "2"


# --- least privilege -----------------------------------------------------------------------


def role_assignments() -> list[dict[str, Any]]:
    found = []
    for r in resources(type_="Microsoft.Authorization/roleAssignments"):
        b = r.body
        assert "scope" in b, (
            f"{r.file.name}:{r.symbol} has no scope: it would be resource-group wide"
        )
        role = function(b["properties"]["roleDefinitionId"], "subscription_resource_id")
        assert role and role["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role_key = operator(role["resource_name_1"], "property_accessor")
        assert role_key and role_key["operand_1"] == "roles", f"{r.symbol}: role not from `roles`"
        role_id = variable(r.file, "roles")[role_key["operand_2"]]
        scope = b["scope"]
        indexed = operator(scope, "index_accessor")
        scope_symbol = indexed["operand_1"] if indexed else scope
        assert isinstance(scope_symbol, str), f"{r.symbol}: scope {scope!r}"
        target = resource(r.file, scope_symbol)
        found.append(
            {
                "symbol": r.symbol,
                "role": role_id,
                "principal": b["properties"]["principalId"],
                "scope": target,
                "loop": r.config.get("loop_type"),
            }
        )
    return found


def test_no_owner_or_contributor_anywhere() -> None:
    for path in INFRA.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8").lower()
            assert OWNER not in text and CONTRIBUTOR not in text, path
    assert {a["role"] for a in role_assignments()} <= ALLOWED_ROLES
    assert not list(resources(type_="Microsoft.Authorization/roleDefinitions"))  # no custom roles


def test_every_role_assignment_is_scoped_to_one_resource() -> None:
    assignments = role_assignments()
    assert assignments
    for a in assignments:
        target: Resource = a["scope"]
        assert target.existing, f"{a['symbol']}: scope is not a named resource"
        assert target.type != "Microsoft.Resources/resourceGroups"
    assert [r.file for r in resources(type_="Microsoft.Authorization/roleAssignments")] == [
        RBAC
    ] * len(assignments)


def test_the_app_identity_gets_exactly_the_roles_it_needs() -> None:
    app = {
        (a["role"], a["scope"].type, a["scope"].symbol)
        for a in role_assignments()
        if a["principal"] == "principalId"
    }
    containers = "Microsoft.Storage/storageAccounts/blobServices/containers"
    assert app == {
        (BLOB_DATA_OWNER, "Microsoft.Storage/storageAccounts", "hostStorage"),
        (BLOB_DATA_READER, containers, "registryContainer"),
        (BLOB_DATA_CONTRIBUTOR, containers, "appWriteContainers"),
        (KV_SECRETS_USER, "Microsoft.KeyVault/vaults", "vault"),
        (METRICS_PUBLISHER, "Microsoft.Insights/components", "insights"),
        (COGNITIVE_SERVICES_USER, "Microsoft.CognitiveServices/accounts", "contentSafety"),
    }
    # Owner only on the host account, which holds nothing but host state and the package.
    (rbac,) = calls_of(RBAC)
    assert accessed(rbac["params"]["hostStorageAccountName"]) == "hostStorage.outputs.name"
    assert accessed(rbac["params"]["dataStorageAccountName"]) == "dataStorage.outputs.name"
    assert accessed(rbac["params"]["principalId"]) == "identity.properties.principalId"
    written = {resolve(Setting(n, MAIN)).value for n in rbac["params"]["appWriteContainerNames"]}
    assert written == {"probe-results", "usage", "audit", "content-logs"}
    assert resolve(Setting(rbac["params"]["registryContainerName"], MAIN)).value == "registry"


def test_operator_roles_are_optional_and_narrow() -> None:
    operator_roles = {
        (a["role"], a["scope"].symbol)
        for a in role_assignments()
        if a["principal"] == "operatorPrincipalId"
    }
    assert operator_roles == {
        (KV_SECRETS_OFFICER, "vault"),
        (BLOB_DATA_CONTRIBUTOR, "operatorWriteContainers"),
        (BLOB_DATA_READER, "operatorReadContainers"),
    }
    assert parameter(RBAC, "operatorPrincipalId")["default"] == ""
    assert resource(RBAC, "operatorVault").config["condition"] == "withOperator"
    for name in ("operatorWrites", "operatorReads"):
        branches = operator(variable(RBAC, name), "conditional")
        assert (
            branches and branches["condition"] == "withOperator" and branches["false_value"] == []
        )


# --- network -------------------------------------------------------------------------------


def test_internal_only_means_private_endpoints_and_vnet_integration() -> None:
    assert parameter(MAIN, "internalOnly") == {
        "decorators": _any(),
        "type": "bool",
        "default": False,
    }
    (network,) = calls_of(NETWORK)
    assert network["condition"] == "internalOnly"

    endpoints = [c for c in calls_of(ENDPOINT)]
    groups = sorted(c["params"]["groupId"] for c in endpoints)
    assert groups == ["account", "blob", "blob", "redisCache", "sites", "vault"]
    for call in endpoints:
        cond = call["condition"]
        assert cond == "internalOnly" or operator(cond, "and") in (
            {"operand_1": "internalOnly", "operand_2": "redisEnabled"},
            {"operand_1": "internalOnly", "operand_2": "contentSafety"},
        )
    zones = variable(MAIN, "privateDnsZoneNames")
    assert "privatelink.azurewebsites.net" in zones
    assert "privatelink.vaultcore.azure.net" in zones
    assert "privatelink.redis.cache.windows.net" in zones
    assert "privatelink.cognitiveservices.azure.com" in zones
    assert any(z.startswith("privatelink.blob.") for z in zones)

    vnet = the(NETWORK, "Microsoft.Network/virtualNetworks").properties
    app_subnet = next(s for s in vnet["subnets"] if s["name"] == "app")
    delegations = [d["properties"]["serviceName"] for d in app_subnet["properties"]["delegations"]]
    assert delegations == ["Microsoft.App/environments"]

    site = the(APP, "Microsoft.Web/sites").properties
    assert operator(site["publicNetworkAccess"], "conditional") == {
        "condition": "internalOnly",
        "true_value": "Disabled",
        "false_value": "Enabled",
    }
    subnet = operator(site["virtualNetworkSubnetId"], "conditional")
    assert subnet and subnet["condition"] == "internalOnly"
    assert subnet["true_value"] == "appSubnetId" and subnet["false_value"] is None
    access = operator(variable(MAIN, "publicAccess"), "conditional")
    assert access == {
        "condition": "internalOnly",
        "true_value": "Disabled",
        "false_value": "Enabled",
    }


def test_public_mode_restricts_inbound_addresses_from_a_parameter() -> None:
    site_config = the(APP, "Microsoft.Web/sites").properties["siteConfig"]
    rules = site_config["ipSecurityRestrictions"]
    assert rules["loop_type"]["detail"]["array_name"] == "publicAllowList"
    assert rules["config"]["ipAddress"] == "cidr" and rules["config"]["action"] == "Allow"
    allow_list = operator(variable(APP, "publicAllowList"), "conditional")
    assert allow_list == {
        "condition": "internalOnly",
        "true_value": [],
        "false_value": "allowedIpRanges",
    }
    default = operator(site_config["ipSecurityRestrictionsDefaultAction"], "conditional")
    assert default == {"condition": "restricted", "true_value": "Deny", "false_value": "Allow"}
    assert site_config["scmIpSecurityRestrictionsUseMain"] is True
    assert parameter(MAIN, "allowedIpRanges")["default"] == []


def _any() -> Any:
    class Anything:
        def __eq__(self, other: object) -> bool:
            return True

    return Anything()


# --- parameters file and workbook ----------------------------------------------------------


def parameters_file() -> dict[str, Any]:
    document = json.loads(PARAMETERS.read_text(encoding="utf-8"))
    assert "deploymentParameters.json" in document["$schema"]
    values: dict[str, Any] = document["parameters"]
    return values


def test_the_parameters_file_matches_main_and_holds_a_valid_configuration() -> None:
    values = parameters_file()
    declared = model(MAIN)["parameters"]
    assert set(values) <= set(declared)
    required = {n for n, spec in declared.items() if spec["default"] is None}
    assert required <= set(values), f"the parameters file must give {required - set(values)}"
    config = parse_config(values["upstreams"]["value"])  # what TOLLGATE_CONFIG_JSON will hold
    assert config.models
    for name in values["allowedIpRanges"]["value"]:
        ipaddress.ip_network(name)


def test_the_workbook_covers_usage_by_system_and_model_and_the_probe() -> None:
    workbook = json.loads(WORKBOOK_JSON.read_text(encoding="utf-8"))
    assert workbook["version"] == "Notebook/1.0"
    queries = {
        item["name"]: item["content"]["query"]
        for item in workbook["items"]
        if item["type"] == 3 and item["content"]["version"] == "KqlItem/1.0"
    }
    texts = " ".join(item["content"]["json"] for item in workbook["items"] if item["type"] == 1)
    assert "#9" in texts  # the metrics come from issue #9
    for metric in ("tollgate.requests", "tollgate.tokens", "tollgate.cost"):
        query = next(q for q in queries.values() if f'"{metric}"' in q)
        assert 'customDimensions["system"]' in query and 'customDimensions["model"]' in query
        assert "by system, model" in query
    probe = queries["probe-direct-vs-gateway"]
    assert 'path == "direct"' in probe and 'path == "gateway"' in probe
    assert "latency_probe" in queries["probe-runs"]
    assert workbook["fallbackResourceIds"] == ["__APP_INSIGHTS_ID__"]

    resource_ = the(WORKBOOK, "Microsoft.Insights/workbooks")
    assert resource_.body["kind"] == "shared"
    assert resource_.properties["sourceId"] == "appInsightsId"
    (call,) = calls_of(WORKBOOK)
    assert accessed(call["params"]["appInsightsId"]) == "monitoring.outputs.insightsId"
    assert "../workbook/tollgate.workbook.json" in WORKBOOK.read_text()


# --- secrets -------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "storage account key": re.compile(r"AccountKey\s*=", re.I),
    "SAS signature": re.compile(r"[?&]sig=[A-Za-z0-9%]{10,}"),
    "OpenAI key": re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "instrumentation key": re.compile(r"InstrumentationKey\s*=\s*[0-9a-f]{8}-", re.I),
    "password in a URL": re.compile(r"\w+://[^/\s:@'\"]*:[^/\s@'\"]+@"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
SENSITIVE_NAME = re.compile(r"(password|secret|token|connectionstring|apikey|key)$", re.I)


def secrets_in(text: str) -> list[str]:
    found = [kind for kind, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    for run in BASE64_RUN.findall(text):
        # A key or token mixes cases and digits; paths and words do not.
        if re.search(r"\d", run) and re.search(r"[a-z]", run) and re.search(r"[A-Z]", run):
            found.append(f"base64-looking {run[:12]}...")
    return found


@pytest.mark.parametrize(
    "sample",
    [
        "AccountName=x;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq;",
        "key: sk-proj-abcdefghijklmnopqrstuv",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        "'Zm9vYmFyYmF6cXV4UVVVWDEyMzQ1Njc4OTBhYmNkZWZnaGlqa2xtbm9w'",
        "rediss://:p4ssw0rd@cache.redis.cache.windows.net:6380/0",
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=abcdEFGH1234ijkl%2B",
    ],
)
def test_the_secret_scan_catches_a_planted_secret(sample: str) -> None:
    assert secrets_in(sample)


def test_no_template_or_parameter_file_contains_a_secret() -> None:
    files = [p for p in INFRA.rglob("*") if p.is_file()]
    assert PARAMETERS in files and WORKBOOK_JSON in files
    for path in files:
        assert secrets_in(path.read_text(encoding="utf-8")) == [], path


def test_sensitive_parameters_are_secure_and_have_no_default() -> None:
    for path in bicep_files():
        for name, spec in model(path)["parameters"].items():
            if SENSITIVE_NAME.search(name):
                assert "secure" in decorators(path, name), f"{path.name}: {name} needs @secure()"
                assert spec["default"] is None, f"{path.name}: {name} has a default value"
    for name in parameters_file():
        assert not SENSITIVE_NAME.search(name), f"main.parameters.json gives a value for {name}"


def test_upstream_keys_are_wired_by_name_only() -> None:
    config = parameters_file()["upstreams"]["value"]
    for spec in config["upstreams"].values():
        assert set(spec) & {"api_key", "key", "password"} == set()
        assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", spec["key_secret"])  # a Key Vault secret name
    assert re.fullmatch(r"[0-9A-Za-z-]+", parameter(MAIN, "probeKeySecretName")["default"])


def test_module_calls_pass_only_declared_parameters() -> None:
    for call in module_calls().values():
        target = INFRA / call["path"]
        declared = model(target)["parameters"]
        assert set(call["params"]) <= set(declared), f"{call['path']}: unknown parameter"
        required = {n for n, spec in declared.items() if spec["default"] is None}
        assert required <= set(call["params"]), (
            f"{call['path']}: missing {required - set(call['params'])}"
        )
