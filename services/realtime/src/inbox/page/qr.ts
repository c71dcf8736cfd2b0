import { encode } from 'uqr';

/** Pixels per QR module and the quiet zone around the code (4 modules, as the QR standard asks). */
const SCALE = 6;
const QUIET = 4;

/**
 * A PNG (data: URL) of the QR code of exactly `text`, black on white with its quiet zone: what a
 * phone's WhatsApp scans to link the session.
 */
export function qrPng(text: string): string {
  const { data, size } = encode(text, { ecc: 'M', border: 0 });
  const side = (size + 2 * QUIET) * SCALE;
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext('2d');
  if (!context) throw new Error('no 2d canvas');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, side, side);
  context.fillStyle = '#000';
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) context.fillRect((x + QUIET) * SCALE, (y + QUIET) * SCALE, SCALE, SCALE);
    }),
  );
  return canvas.toDataURL('image/png');
}
