// Log Analytics workspace and a workspace-based Application Insights component. Local
// (instrumentation key) authentication is off: telemetry is accepted only with a Microsoft
// Entra token, which the app gets as its managed identity (Monitoring Metrics Publisher,
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING in app.bicep).

param workspaceName string
param insightsName string
param location string
param tags object

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param retentionDays int = 90

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: insightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    RetentionInDays: retentionDays
  }
}

output workspaceId string = workspace.id
output insightsId string = insights.id
output insightsName string = insights.name
// Not a secret: with local authentication disabled it cannot be used to send telemetry alone.
output connectionString string = insights.properties.ConnectionString
