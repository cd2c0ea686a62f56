import { badInput } from '../platform/errors.js';
import { fetchImage, type ImageFetchOptions } from './fetch-image.js';
import { imageBytesToBase64, imageFromBase64 } from './image-bytes.js';

/** Images as a client may give them: base64 strings, multipart uploads, or URLs to fetch. */
export interface ImageSources {
  images?: readonly string[] | null;
  uploads?: readonly (Blob | Promise<Blob>)[] | null;
  urls?: readonly string[] | null;
}

export interface ImageLimits extends ImageFetchOptions {
  /** Per message (chat turn). */
  maxImages: number;
  /** Over the whole request, all messages and sources together (MAX_IMAGES_PER_REQUEST); unset = no cap beyond per message. */
  maxImagesPerRequest?: number;
}

/**
 * Checks image counts before anything is decoded or downloaded: at most `maxImages` per message
 * and `maxImagesPerRequest` in all. `perMessage` holds each message's count.
 */
export function checkImageCounts(perMessage: readonly number[], limits: Pick<ImageLimits, 'maxImages' | 'maxImagesPerRequest'>): void {
  perMessage.forEach((n, i) => {
    if (n > limits.maxImages) throw badInput(`At most ${limits.maxImages} images per message.`, { field: perMessage.length > 1 ? `messages[${i}].images` : 'images', limit: 'maxImagesPerMessage' });
  });
  const total = perMessage.reduce((a, b) => a + b, 0);
  const max = limits.maxImagesPerRequest;
  if (max !== undefined && max > 0 && total > max) throw badInput(`At most ${max} images per request (this one has ${total}).`, { field: 'images', limit: 'maxImagesPerRequest' });
}

/** Turns every image source into the plain base64 strings Ollama takes; throws BAD_USER_INPUT. */
export async function resolveImages(sources: ImageSources, limits: ImageLimits): Promise<string[]> {
  const count = (sources.images?.length ?? 0) + (sources.uploads?.length ?? 0) + (sources.urls?.length ?? 0);
  if (count > limits.maxImages) throw badInput(`At most ${limits.maxImages} images per message.`, { field: 'images' });
  const out: string[] = [];
  (sources.images ?? []).forEach((b64, i) => out.push(imageFromBase64(b64, limits.maxBytes, `images[${i}]`)));
  for (const [i, upload] of (sources.uploads ?? []).entries()) {
    const file = await upload;
    if (file.size > limits.maxBytes) throw badInput(`imageUploads[${i}] is larger than ${limits.maxBytes} bytes.`, { field: `imageUploads[${i}]` });
    out.push(imageBytesToBase64(Buffer.from(await file.arrayBuffer()), limits.maxBytes, `imageUploads[${i}]`));
  }
  for (const [i, url] of (sources.urls ?? []).entries()) out.push(await fetchImage(url, limits, `imageUrls[${i}]`));
  return out;
}
