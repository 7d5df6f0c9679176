#!/usr/bin/env node
import "../dist/ksr.js";
