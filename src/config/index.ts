export { loadConfig, ConfigError, coerce, type LoadedConfig, type LoadOptions, type ResolvedSetting, type Source } from './load.js'
export { SETTINGS, SETTINGS_BY_KEY, envName, unbracketed, LOG_LEVELS, type AgentConfig, type LogLevel, type SettingSpec } from './schema.js'
