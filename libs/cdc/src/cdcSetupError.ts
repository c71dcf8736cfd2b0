/** The error the relay fails with when the ERP database is not ready for it; the message says what to do. */
export class CdcSetupError extends Error {
  readonly code = 'CDC_SETUP';
}
