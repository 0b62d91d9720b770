// Preact + htm: `html` is JSX without a build step. Every view imports from here.
import { h, render, Fragment } from 'preact';
import htm from 'htm';

export { h, render, Fragment };
export {
  useState, useEffect, useRef, useMemo, useCallback, useReducer, useContext,
} from 'preact/hooks';
export const html = htm.bind(h);
