// Azure AI Content Safety for content policies (TOLLGATE_CONTENT_SAFETY_ENDPOINT, issue #20).
// Local (key) auth is disabled: the app signs in with Microsoft Entra ID as its managed identity,
// which gets Cognitive Services User on this account (rbac.bicep). Entra ID sign-in needs a
// custom subdomain (https://<name>.cognitiveservices.azure.com), so the account has one.
// Only the app calls it: in internal-only mode it is reached through a private endpoint
// (main.bicep) and its public endpoint is off, with no firewall exceptions.

@description('Account name, also its custom subdomain (2-64 letters, digits and hyphens; globally unique).')
@minLength(2)
@maxLength(64)
param name string

param location string
param tags object

@description('Enabled or Disabled. Disabled: reachable only through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Allow or Deny: what the firewall does with public traffic.')
@allowed([
  'Allow'
  'Deny'
])
param defaultAction string = 'Allow'

resource account 'Microsoft.CognitiveServices/accounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'ContentSafety'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: defaultAction
      bypass: 'None'
      ipRules: []
      virtualNetworkRules: []
    }
  }
}

output id string = account.id
output name string = account.name
output endpoint string = account.properties.endpoint
